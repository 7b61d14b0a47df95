// snapshot.h: segmentDir(), listProcesses() and readProcess(pid): copies of segments as
// plain JavaScript objects. JavaScript never sees the shared memory itself.
#ifndef BIGMAAC_ADDON_SNAPSHOT_H
#define BIGMAAC_ADDON_SNAPSHOT_H

#include <napi.h>

#include <cstdint>
#include <string>

namespace bigmaac {

Napi::Value SegmentDir(const Napi::CallbackInfo& info);
Napi::Value ListProcesses(const Napi::CallbackInfo& info);
Napi::Value ReadProcess(const Napi::CallbackInfo& info);

// Reads argument `index` as a pid. On failure a JavaScript exception is pending and
// false is returned.
bool PidArgument(const Napi::CallbackInfo& info, size_t index, int32_t* pid);

// Reads optional argument `index` as a segment directory: empty when absent (the reader
// then uses BIGMAAC_SEGMENT_DIR or its default). On a bad value a JavaScript exception is
// pending and false is returned.
bool DirArgument(const Napi::CallbackInfo& info, size_t index, std::string* dir);

// The directory for the reader API: NULL means its default.
inline const char* DirOrDefault(const std::string& dir) {
  return dir.empty() ? nullptr : dir.c_str();
}

}  // namespace bigmaac

#endif
