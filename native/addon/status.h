// status.h: turning reader status codes into JavaScript errors with a stable `.code`.
#ifndef BIGMAAC_ADDON_STATUS_H
#define BIGMAAC_ADDON_STATUS_H

#include <napi.h>

namespace bigmaac {

// The `.code` the agent relies on (docs/architecture.md §3) for a reader status.
const char* StatusCode(int status);

// An Error carrying `.code`, `.status` (the reader's number) and a message that names
// the pid when there is one (pid <= 0: none). `sys_errno` is used for BIGMAAC_ERR_SYSTEM.
Napi::Error StatusError(Napi::Env env, int status, int pid, int sys_errno);

// An Error with `.code` = "EINVAL" for bad arguments from JavaScript.
Napi::Error InvalidArgument(Napi::Env env, const char* message);

}  // namespace bigmaac

#endif
