// snapshot.cc: segment copies -> plain objects.
//
// The reader copies a whole segment (about 36 KiB) with pread and validates it; we
// convert that private copy. A segment that cannot be read throws an Error with a
// `.code` (status.h) instead of bringing the agent down.
#include "snapshot.h"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bigmaac_segment.h"
#include "status.h"

namespace bigmaac {
namespace {

// Largest pid Linux hands out (PID_MAX_LIMIT on 64-bit).
constexpr double kPidMax = 4194304;

// A fixed-size field is NUL-terminated by the writer; do not trust that.
std::string BoundedString(const char* field, size_t size) {
  return std::string(field, strnlen(field, size));
}

Napi::Number Bytes(Napi::Env env, uint64_t value) {
  // Bytes stay below 2^53 in practice; the conversion is exact up to there.
  return Napi::Number::New(env, static_cast<double>(value));
}

Napi::Number Milliseconds(Napi::Env env, uint64_t ns) {
  return Napi::Number::New(env, static_cast<double>(ns / 1000000u));
}

Napi::Object DiskBacked(Napi::Env env, const bigmaac_counters& c) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("bytes", Bytes(env, c.live_big_bytes + c.live_fry_bytes));
  object.Set("count", Bytes(env, c.live_big_count + c.live_fry_count));
  return object;
}

Napi::Object Counters(Napi::Env env, const bigmaac_counters& c) {
  Napi::Object object = Napi::Object::New(env);
  object.Set("liveBigCount", Bytes(env, c.live_big_count));
  object.Set("liveBigBytes", Bytes(env, c.live_big_bytes));
  object.Set("liveFryCount", Bytes(env, c.live_fry_count));
  object.Set("liveFryBytes", Bytes(env, c.live_fry_bytes));
  object.Set("allocs", Bytes(env, c.allocs));
  object.Set("frees", Bytes(env, c.frees));
  object.Set("reallocs", Bytes(env, c.reallocs));
  object.Set("diskReserved", Bytes(env, c.disk_reserved));
  object.Set("fallbacks", Bytes(env, c.fallbacks));
  object.Set("failures", Bytes(env, c.failures));
  object.Set("pageouts", Bytes(env, c.pageouts));
  return object;
}

Napi::Array Allocations(Napi::Env env, const bigmaac_stats& stats) {
  uint32_t count = stats.table_count;
  if (count > BIGMAAC_TABLE_SLOTS) count = BIGMAAC_TABLE_SLOTS;  // never index past the table
  Napi::Array array = Napi::Array::New(env, count);
  for (uint32_t i = 0; i < count; i++) {
    const bigmaac_allocation& a = stats.table[i];
    Napi::Object object = Napi::Object::New(env);
    object.Set("address", Bytes(env, a.address));
    object.Set("size", Bytes(env, a.size));
    object.Set("createdAt", Milliseconds(env, a.created_ns));
    object.Set("tier", Napi::String::New(env, a.tier == BIGMAAC_TIER_FRY ? "fry" : "big"));
    array.Set(i, object);
  }
  return array;
}

// The fields every snapshot has; `detailed` adds counters and the allocation table.
Napi::Object ToObject(Napi::Env env, const bigmaac_segment& s, bool detailed) {
  const bigmaac_identity& id = s.identity;
  Napi::Object object = Napi::Object::New(env);
  object.Set("pid", Napi::Number::New(env, id.pid));
  object.Set("startTime", Bytes(env, id.start_time));
  object.Set("uid", Napi::Number::New(env, id.uid));
  object.Set("kernelId", BoundedString(id.kernel_id, sizeof id.kernel_id));
  object.Set("label", BoundedString(id.label, sizeof id.label));
  object.Set("command", BoundedString(id.command, sizeof id.command));
  object.Set("swapDir", BoundedString(id.swap_dir, sizeof id.swap_dir));
  object.Set("swapFs", BoundedString(id.swap_fs, sizeof id.swap_fs));
  object.Set("swapOnRam", Napi::Boolean::New(env, (id.flags & BIGMAAC_SWAP_ON_RAM) != 0));
  object.Set("minBigSize", Bytes(env, id.min_big_size));
  object.Set("createdAt", Milliseconds(env, id.created_ns));
  object.Set("diskBacked", DiskBacked(env, s.stats.counters));
  object.Set("peakBytes", Bytes(env, s.stats.counters.peak_bytes));
  object.Set("updatedAt", Milliseconds(env, s.stats.updated_ns));
  object.Set("heartbeatAt", Milliseconds(env, s.stats.heartbeat_ns));
  object.Set("dirtyBudget", Bytes(env, id.dirty_budget));
  if (detailed) {
    object.Set("budgetWritebacks", Bytes(env, s.stats.counters.budget_writebacks));
    object.Set("dirtyPeak", Bytes(env, s.stats.counters.dirty_peak));
    object.Set("counters", Counters(env, s.stats.counters));
    object.Set("allocationsTotal", Bytes(env, s.stats.table_total));
    object.Set("allocations", Allocations(env, s.stats));
  }
  return object;
}

// Statuses that mean "this pid left between listing and reading": not worth an error.
bool Vanished(int status) {
  return status == BIGMAAC_ERR_NO_PROCESS || status == BIGMAAC_ERR_STALE;
}

}  // namespace

bool PidArgument(const Napi::CallbackInfo& info, size_t index, int32_t* pid) {
  Napi::Env env = info.Env();
  if (info.Length() <= index || !info[index].IsNumber()) {
    InvalidArgument(env, "pid must be a number").ThrowAsJavaScriptException();
    return false;
  }
  double value = info[index].As<Napi::Number>().DoubleValue();
  if (!(value >= 1 && value <= kPidMax) || std::floor(value) != value) {
    InvalidArgument(env, "pid must be an integer between 1 and 4194304").ThrowAsJavaScriptException();
    return false;
  }
  *pid = static_cast<int32_t>(value);
  return true;
}

bool DirArgument(const Napi::CallbackInfo& info, size_t index, std::string* dir) {
  dir->clear();
  if (info.Length() <= index || info[index].IsUndefined() || info[index].IsNull()) return true;
  if (!info[index].IsString()) {
    InvalidArgument(info.Env(), "segment directory must be a string").ThrowAsJavaScriptException();
    return false;
  }
  *dir = info[index].As<Napi::String>().Utf8Value();
  return true;
}

Napi::Value SegmentDir(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  char dir[BIGMAAC_PATH_MAX];
  int status = bigmaac_segment_dir(dir, sizeof dir);
  if (status != BIGMAAC_OK) {
    StatusError(env, status, 0, errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::String::New(env, dir);
}

Napi::Value ListProcesses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string dir;
  if (!DirArgument(info, 0, &dir)) return env.Undefined();
  std::vector<int32_t> pids(64);
  size_t count = 0;
  // The directory can gain pids between calls: grow until everything fits.
  for (;;) {
    int status = bigmaac_list(DirOrDefault(dir), pids.data(), pids.size(), &count);
    if (status == BIGMAAC_ERR_NO_PROCESS || (status == BIGMAAC_ERR_SYSTEM && errno == ENOENT)) {
      return Napi::Array::New(env, 0);  // no segment directory yet: nobody ran BigMaac
    }
    if (status != BIGMAAC_OK) {
      StatusError(env, status, 0, errno).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (count <= pids.size()) break;
    pids.resize(count + 64);
  }
  auto segment = std::make_unique<bigmaac_segment>();
  Napi::Array result = Napi::Array::New(env);
  uint32_t n = 0;
  for (size_t i = 0; i < count; i++) {
    int status = bigmaac_snapshot(DirOrDefault(dir), pids[i], segment.get());
    // A process that exited, or a segment we cannot read (another user's, another
    // version's), is left out of the list; readProcess(pid) says why.
    if (status != BIGMAAC_OK) continue;
    result.Set(n++, ToObject(env, *segment, false));
  }
  return result;
}

Napi::Value ReadProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int32_t pid = 0;
  std::string dir;
  if (!PidArgument(info, 0, &pid) || !DirArgument(info, 1, &dir)) return env.Undefined();
  auto segment = std::make_unique<bigmaac_segment>();
  int status = bigmaac_snapshot(DirOrDefault(dir), pid, segment.get());
  if (status != BIGMAAC_OK) {
    int code = Vanished(status) ? BIGMAAC_ERR_NO_PROCESS : status;
    StatusError(env, code, pid, errno).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return ToObject(env, *segment, true);
}

}  // namespace bigmaac
