// pageout_worker.h: pageout(pid, onProgress) -> { promise, cancel }. The request is sent
// and awaited on a libuv worker thread so the agent's event loop never blocks.
#ifndef BIGMAAC_ADDON_PAGEOUT_WORKER_H
#define BIGMAAC_ADDON_PAGEOUT_WORKER_H

#include <napi.h>

namespace bigmaac {

Napi::Value Pageout(const Napi::CallbackInfo& info);

}  // namespace bigmaac

#endif
