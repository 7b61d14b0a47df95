"""A kernel provisioner that starts any local kernel with disk-backed memory.

It is LocalProvisioner plus environment: every kernelspec without a
provisioner of its own (Python, R, Julia, ...) gets LD_PRELOAD and the
BIGMAAC_* variables. A kernel never fails to start because of BigMaac: on
any problem it starts without it and the reason is recorded.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner

from .notebooks import NotebookChoice, notebook_choice, server_context
from .registry import kernel_registry
from .settings import BigMaac, KernelSettings, Resolution, parse_size, resolve
from .user_settings import UserSettings, UserSettingsFile, default_settings_dir

LIBRARY_NAME = "libbigmaac.so"
PRELOAD_SEPARATORS = re.compile(r"[:\s]+")


class BigMaacProvisioner(LocalProvisioner):  # type:ignore[misc]
    """LocalProvisioner that preloads libbigmaac.so into the kernel."""

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        kwargs = await super().pre_launch(**kwargs)
        env = kwargs.get("env")
        if env is None:
            env = kwargs["env"] = dict(os.environ)
        label = getattr(self.kernel_spec, "display_name", "") or ""
        choice = await self._notebook_choice(env)
        # Off the event loop: the swap directory and the user's file may be on NFS.
        resolution = await asyncio.get_running_loop().run_in_executor(None, self._resolve, choice)
        if resolution.enabled:
            apply_environment(env, resolution.settings, self.kernel_id, label)
        else:
            remove_library(env)
            self.log.info(
                "Kernel %s starts without BigMaac: %s", self.kernel_id, resolution.reason
            )
        kernel_registry.launching(self.kernel_id, label, resolution, choice.path)
        return kwargs

    async def _notebook_choice(self, env: dict[str, str]) -> NotebookChoice:
        try:
            return await notebook_choice(env, self.log)
        except Exception:  # never let a bug of ours stop a kernel
            self.log.exception("BigMaac could not read the notebook's choice for kernel %s", self.kernel_id)
            return NotebookChoice(None, {}, {})

    def _resolve(self, choice: NotebookChoice) -> Resolution:
        # Settings are read afresh on every launch, so a restart picks up changes.
        try:
            user = _user_settings()
            resolution = resolve(
                BigMaac(parent=self), notebook=choice.values, user=user.kernel, warnings=user.problems
            )
            for name, source in resolution.sources.items():
                if source == "notebook":
                    resolution.sources[name] = choice.origins.get(name, source)
            return resolution
        except Exception as error:  # never let a bug of ours stop a kernel
            self.log.exception("BigMaac could not resolve settings for kernel %s", self.kernel_id)
            fallback = KernelSettings(False, "", "", "")
            return Resolution(False, fallback, f"internal error: {error}", "error")

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        connection_info = await super().launch_kernel(cmd, **kwargs)
        kernel_registry.launched(self.kernel_id, self.pid)
        return connection_info

    async def send_signal(self, signum: int) -> None:
        # kill() sends SIGKILL through here too. Recorded before sending, so the
        # exit that follows is known to be ours and never taken for the OOM killer's.
        if signum == signal.SIGKILL and self.process is not None and self.process.poll() is None:
            kernel_registry.killing(self.kernel_id)
        await super().send_signal(signum)

    async def poll(self) -> int | None:
        status = await super().poll()
        if status is not None:
            kernel_registry.exited(self.kernel_id, status)
        return status

    async def wait(self) -> int | None:
        status = await super().wait()
        kernel_registry.exited(self.kernel_id, status)
        return status


def apply_environment(
    env: dict[str, str], settings: KernelSettings, kernel_id: str, label: str
) -> None:
    """Add the preload and the BIGMAAC_* variables of architecture.md section 1."""
    env["LD_PRELOAD"] = append_preload(env.get("LD_PRELOAD", ""), settings.library)
    env["BIGMAAC_MIN_BIGMAAC_SIZE"] = settings.min_bigmaac_size
    if parse_size(settings.min_fry_size, allow_zero=True) == 0:
        env.pop("BIGMAAC_MIN_FRY_SIZE", None)
    else:
        env["BIGMAAC_MIN_FRY_SIZE"] = settings.min_fry_size
    env["BIGMAAC_ON_DISK_FULL"] = settings.on_disk_full
    env["BIGMAAC_DIR"] = settings.swap_dir
    env["BIGMAAC_KERNEL_ID"] = kernel_id or ""
    env["BIGMAAC_LABEL"] = label
    # BIGMAAC_DIR wins over the old template name; drop it so there is one truth.
    env.pop("BIGMAAC_TEMPLATE", None)


_standalone_settings: UserSettingsFile | None = None


def _user_settings() -> UserSettings:
    """The user's settings: where the server's JupyterLab keeps them, else
    JupyterLab's default place (the provisioner used without our extension)."""
    global _standalone_settings
    context = server_context()
    if context is not None and context.user_settings is not None:
        return context.user_settings.read()
    if _standalone_settings is None:
        _standalone_settings = UserSettingsFile(default_settings_dir())
    return _standalone_settings.read()


def append_preload(current: str, library: str) -> str:
    """`current` with `library` appended once; other entries keep their order."""
    entries = [entry for entry in PRELOAD_SEPARATORS.split(current) if entry]
    entries = [entry for entry in entries if not _is_our_library(entry, library)]
    return ":".join([*entries, library])


def remove_library(env: dict[str, str]) -> None:
    """Strip any libbigmaac.so inherited from the server's own environment."""
    current = env.get("LD_PRELOAD", "")
    if LIBRARY_NAME not in current:
        return
    entries = [
        entry
        for entry in PRELOAD_SEPARATORS.split(current)
        if entry and os.path.basename(entry) != LIBRARY_NAME
    ]
    if entries:
        env["LD_PRELOAD"] = ":".join(entries)
    else:
        env.pop("LD_PRELOAD", None)


def _is_our_library(entry: str, library: str) -> bool:
    if entry == library or os.path.basename(entry) == LIBRARY_NAME:
        return True
    try:
        return os.path.samefile(entry, library)
    except OSError:
        return False
