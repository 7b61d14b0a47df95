// residency_worker.cc: one residency request on a worker thread.
//
// The process measures on its control thread (between chunks when a page-out runs), so
// the answer normally comes within milliseconds; a stopped process gets ETIMEDOUT after
// kTimeoutMs rather than holding a worker thread for ever.
#include "residency_worker.h"

#include <cerrno>
#include <memory>
#include <string>

#include "bigmaac_segment.h"
#include "snapshot.h"
#include "status.h"

namespace bigmaac {
namespace {

constexpr int kTimeoutMs = 5000;

double Bytes(uint64_t value) { return static_cast<double>(value); }

class ResidencyWorker : public Napi::AsyncWorker {
 public:
  ResidencyWorker(Napi::Env env, int32_t pid, std::string dir)
      : Napi::AsyncWorker(env),
        pid_(pid),
        dir_(std::move(dir)),
        deferred_(Napi::Promise::Deferred::New(env)),
        answer_(std::make_unique<struct bigmaac_residency>()) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

 protected:
  void Execute() override {
    status_ = bigmaac_residency(DirOrDefault(dir_), pid_, kTimeoutMs, answer_.get());
    errno_ = errno;
    if (status_ != BIGMAAC_OK) SetError("residency request failed");
  }

  void OnOK() override {
    Napi::Env env = Env();
    const struct bigmaac_residency& r = *answer_;
    Napi::Object result = Napi::Object::New(env);
    result.Set("pid", Napi::Number::New(env, pid_));
    result.Set("resident", Napi::Number::New(env, Bytes(r.resident)));
    result.Set("dirty", Napi::Number::New(env, Bytes(r.dirty)));
    result.Set("dirtyKnown",
               Napi::Boolean::New(env, (r.flags & BIGMAAC_RESIDENCY_DIRTY_KNOWN) != 0));
    result.Set("measuredAt", Napi::Number::New(env, Bytes(r.measured_ns / 1000000u)));
    result.Set("durationMs", Napi::Number::New(env, r.duration_ns / 1e6));
    result.Set("allocationsTotal", Napi::Number::New(env, Bytes(r.total)));
    uint32_t count = r.count < BIGMAAC_TABLE_SLOTS ? r.count : BIGMAAC_TABLE_SLOTS;
    Napi::Array allocations = Napi::Array::New(env, count);
    for (uint32_t i = 0; i < count; i++) {
      const bigmaac_allocation_residency& a = r.table[i];
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("address", Napi::Number::New(env, Bytes(a.address)));
      entry.Set("size", Napi::Number::New(env, Bytes(a.size)));
      entry.Set("resident", Napi::Number::New(env, Bytes(a.resident)));
      entry.Set("dirty", Napi::Number::New(env, Bytes(a.dirty)));
      allocations.Set(i, entry);
    }
    result.Set("allocations", allocations);
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error&) override {
    int status = status_ == BIGMAAC_ERR_STALE ? BIGMAAC_ERR_NO_PROCESS : status_;
    deferred_.Reject(StatusError(Env(), status, pid_, errno_).Value());
  }

 private:
  int32_t pid_;
  std::string dir_;
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<struct bigmaac_residency> answer_;  // about 32 KiB: not on the stack
  int status_ = BIGMAAC_OK;
  int errno_ = 0;
};

}  // namespace

Napi::Value Residency(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pid = 0;
  std::string dir;
  if (!PidArgument(info, 0, &pid) || !DirArgument(info, 1, &dir)) return env.Undefined();
  auto* worker = new ResidencyWorker(env, pid, std::move(dir));  // deletes itself
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace bigmaac
