// pageout_worker.cc: one page-out request, from start to result, on a worker thread.
//
// Only the worker thread touches the request (start, wait, cancel, close); JavaScript's
// cancel() just raises a flag the worker checks between short waits. That keeps the
// reader's request struct single-threaded and cancel() safe to call at any time.
// A request that times out (the process is stopped or stuck) is cancelled too, so that
// the failure the caller sees is final.
#include "pageout_worker.h"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <string>

#include "bigmaac_segment.h"
#include "snapshot.h"
#include "status.h"

namespace bigmaac {
namespace {

// How long one wait blocks: the latency of progress reports and of cancel().
constexpr int kWaitSliceMs = 100;
// After cancel(), how long we wait for the process to acknowledge before giving up.
constexpr auto kCancelGrace = std::chrono::seconds(5);

struct Progress {
  double bytes_done;
  double bytes_total;
};

class PageoutWorker : public Napi::AsyncProgressQueueWorker<Progress> {
 public:
  PageoutWorker(Napi::Env env, int32_t pid, std::string dir, Napi::Function on_progress,
                std::shared_ptr<std::atomic<bool>> cancelled)
      : Napi::AsyncProgressQueueWorker<Progress>(env),
        pid_(pid),
        dir_(std::move(dir)),
        deferred_(Napi::Promise::Deferred::New(env)),
        cancelled_(std::move(cancelled)) {
    if (!on_progress.IsEmpty()) on_progress_ = Napi::Persistent(on_progress);
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute(const ExecutionProgress& progress) override {
    bigmaac_pageout_request request{};
    status_ = bigmaac_pageout_start(DirOrDefault(dir_), pid_, &request);
    errno_ = errno;
    if (status_ != BIGMAAC_OK) {
      SetError("page-out could not start");
      return;
    }
    status_ = WaitForResult(&request, progress);
    bigmaac_pageout_close(&request);
    if (status_ != BIGMAAC_OK) SetError("page-out failed");
  }

  void OnProgress(const Progress* data, size_t count) override {
    if (on_progress_.IsEmpty() || count == 0) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    const Progress& last = data[count - 1];  // only the newest report matters
    Napi::Object event = Napi::Object::New(env);
    event.Set("bytesDone", Napi::Number::New(env, last.bytes_done));
    event.Set("bytesTotal", Napi::Number::New(env, last.bytes_total));
    on_progress_.Call({event});
    // A throwing progress callback must not take the agent down with it.
    if (env.IsExceptionPending()) env.GetAndClearPendingException();
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object result = Napi::Object::New(env);
    result.Set("pid", Napi::Number::New(env, pid_));
    result.Set("bytesWritten", Napi::Number::New(env, static_cast<double>(result_.bytes_written)));
    result.Set("durationMs", Napi::Number::New(env, result_.duration_ns / 1e6));
    result.Set("residentBefore", Napi::Number::New(env, static_cast<double>(result_.resident_before)));
    result.Set("residentAfter", Napi::Number::New(env, static_cast<double>(result_.resident_after)));
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error&) override {
    Napi::Env env = Env();
    int status = status_ == BIGMAAC_ERR_STALE ? BIGMAAC_ERR_NO_PROCESS : status_;
    deferred_.Reject(StatusError(env, status, pid_, errno_).Value());
  }

 private:
  // Waits in short slices, reporting progress and forwarding cancel(). Returns the
  // page-out's own result once it is done, or the reason it could not finish.
  int WaitForResult(bigmaac_pageout_request* request, const ExecutionProgress& progress) {
    bool cancel_sent = false;
    auto cancel_deadline = std::chrono::steady_clock::time_point::max();
    for (;;) {
      if (!cancel_sent && cancelled_->load()) {
        bigmaac_pageout_cancel(request);
        cancel_sent = true;
        cancel_deadline = std::chrono::steady_clock::now() + kCancelGrace;
      }
      bigmaac_pageout_status status{};
      int rc = bigmaac_pageout_wait(request, kWaitSliceMs, &status);
      if (rc == BIGMAAC_OK) {
        result_ = status;
        return status.result;
      }
      if (rc != BIGMAAC_IN_PROGRESS) {
        errno_ = errno;
        // Given up on, the request is withdrawn: a stopped process that resumes later
        // must not page out when nobody waits for it, perhaps in the middle of a cell.
        if (rc == BIGMAAC_ERR_TIMEOUT && !cancel_sent) bigmaac_pageout_cancel(request);
        return rc;
      }
      if (std::chrono::steady_clock::now() > cancel_deadline) return BIGMAAC_ERR_CANCELLED;
      Progress report{static_cast<double>(status.bytes_done),
                      static_cast<double>(status.bytes_total)};
      progress.Send(&report, 1);
    }
  }

  int32_t pid_;
  std::string dir_;
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference on_progress_;
  std::shared_ptr<std::atomic<bool>> cancelled_;
  int status_ = BIGMAAC_OK;
  int errno_ = 0;
  bigmaac_pageout_status result_{};
};

}  // namespace

Napi::Value Pageout(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pid = 0;
  if (!PidArgument(info, 0, &pid)) return env.Undefined();
  Napi::Function on_progress;
  if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
    if (!info[1].IsFunction()) {
      InvalidArgument(env, "onProgress must be a function").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    on_progress = info[1].As<Napi::Function>();
  }
  std::string dir;
  if (!DirArgument(info, 2, &dir)) return env.Undefined();
  auto cancelled = std::make_shared<std::atomic<bool>>(false);
  auto* worker = new PageoutWorker(env, pid, std::move(dir), on_progress, cancelled);  // deletes itself
  Napi::Object job = Napi::Object::New(env);
  job.Set("promise", worker->Promise());
  job.Set("cancel", Napi::Function::New(env, [cancelled](const Napi::CallbackInfo& call) {
            cancelled->store(true);
            return call.Env().Undefined();
          }, "cancel"));
  worker->Queue();
  return job;
}

}  // namespace bigmaac
