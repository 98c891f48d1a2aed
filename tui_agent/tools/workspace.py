"""The directory the file tools may touch, and the checks that keep them inside it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class OutsideWorkspaceError(ValueError):
    """A path the file tools refuse: it resolves (through ``..`` or a symlink) to somewhere
    outside the workspace, or it cannot be resolved at all (a NUL byte, a symlink loop)."""


@dataclass(frozen=True)
class Workspace:
    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str] | None) -> Workspace:
        return cls(Path(root or os.getcwd()).expanduser().resolve())

    def resolve(self, path: str) -> Path:
        """The real path for ``path`` (relative to the root), refused if it leaves the root.

        The path is fully resolved first, so ``..`` and symlinks pointing outside are caught
        even when only a parent directory is a link.
        """
        if "\0" in path:
            raise OutsideWorkspaceError("the path contains a NUL byte")
        candidate = Path(path).expanduser()
        try:
            full = (candidate if candidate.is_absolute() else self.root / candidate).resolve()
        except RuntimeError as exc:  # Python 3.11 raises this for a symlink loop
            raise OutsideWorkspaceError(f"{path!r} is a symlink loop") from exc
        except OSError as exc:
            raise OutsideWorkspaceError(f"{path!r} cannot be resolved: {exc.strerror}") from exc
        if full != self.root and not full.is_relative_to(self.root):
            raise OutsideWorkspaceError(
                f"{path!r} is outside the workspace {self.root} (file tools are confined to it;"
                " set [tools] workspace_root to widen it)"
            )
        return full

    def relative(self, path: Path) -> str:
        return "." if path == self.root else str(path.relative_to(self.root))
