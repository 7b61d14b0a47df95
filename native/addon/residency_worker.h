// residency_worker.h: residency(pid, dir?) -> Promise of the process's residency,
// measured by the process on request. The request is sent and awaited on a libuv worker
// thread so the agent's event loop never blocks.
#ifndef BIGMAAC_ADDON_RESIDENCY_WORKER_H
#define BIGMAAC_ADDON_RESIDENCY_WORKER_H

#include <napi.h>

namespace bigmaac {

Napi::Value Residency(const Napi::CallbackInfo& info);

}  // namespace bigmaac

#endif
