// addon.cc: bigmaac.node's exports (docs/architecture.md §3).
#include <napi.h>

#include "bigmaac_segment.h"
#include "pageout_worker.h"
#include "residency_worker.h"
#include "snapshot.h"

namespace {

Napi::Object InitBigmaac(Napi::Env env, Napi::Object exports) {
  using namespace bigmaac;
  exports.Set("segmentDir", Napi::Function::New(env, SegmentDir, "segmentDir"));
  exports.Set("listProcesses", Napi::Function::New(env, ListProcesses, "listProcesses"));
  exports.Set("readProcess", Napi::Function::New(env, ReadProcess, "readProcess"));
  exports.Set("pageout", Napi::Function::New(env, Pageout, "pageout"));
  exports.Set("residency", Napi::Function::New(env, Residency, "residency"));
  // The layout this build reads; a segment of another version is refused.
  exports.Set("segmentVersion", Napi::Number::New(env, BIGMAAC_SEGMENT_VERSION));
  return exports;
}

}  // namespace

NODE_API_MODULE(bigmaac, InitBigmaac)
