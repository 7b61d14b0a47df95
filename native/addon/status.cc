// status.cc: reader status -> Error. The agent maps `.code` to protocol errors, so the
// codes here are a contract; the messages are for people.
#include "status.h"

#include <cstring>
#include <string>

#include "bigmaac_segment.h"

namespace bigmaac {

const char* StatusCode(int status) {
  switch (status) {
    case BIGMAAC_ERR_NO_PROCESS:
    case BIGMAAC_ERR_STALE:
      return "ENOENT_PROCESS";
    case BIGMAAC_ERR_PERMISSION:
      return "EPERM";
    // A file we cannot interpret: each has its own message, one code for callers.
    case BIGMAAC_ERR_TRUNCATED:
    case BIGMAAC_ERR_FOREIGN:
    case BIGMAAC_ERR_VERSION:
    case BIGMAAC_ERR_SIZE:
      return "EINCOMPATIBLE";
    case BIGMAAC_ERR_TORN:
      return "ETORN";
    case BIGMAAC_ERR_BUSY:
      return "EBUSY_PAGEOUT";
    case BIGMAAC_ERR_CANCELLED:
      return "ECANCELLED";
    case BIGMAAC_ERR_TIMEOUT:
      return "ETIMEDOUT";
    case BIGMAAC_ERR_INVALID:
    case BIGMAAC_ERR_NAME_TOO_LONG:
      return "EINVAL";
    case BIGMAAC_ERR_UNSAFE_DIR:
      return "EUNSAFE_DIR";
    default:
      return "EIO";
  }
}

Napi::Error StatusError(Napi::Env env, int status, int pid, int sys_errno) {
  std::string message = bigmaac_strerror(status);
  if (status == BIGMAAC_ERR_SYSTEM && sys_errno != 0) {
    message += ": ";
    message += std::strerror(sys_errno);
  }
  if (pid > 0) {
    message = "process " + std::to_string(pid) + ": " + message;
  }
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, StatusCode(status)));
  error.Set("status", Napi::Number::New(env, status));
  return error;
}

Napi::Error InvalidArgument(Napi::Env env, const char* message) {
  Napi::Error error = Napi::TypeError::New(env, message);
  error.Set("code", Napi::String::New(env, "EINVAL"));
  return error;
}

}  // namespace bigmaac
