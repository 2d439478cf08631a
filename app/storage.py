"""Where uploaded files live: one small interface (put, open, delete by key).

The service only ever names a key; `store()` picks the implementation. Today that is the local
disk under `UPLOAD_DIR` (default `instance/uploads/`), right for one instance. Two or more
instances need a shared directory, or an object-storage class with the same three methods
(e.g. S3/OSS: put_object, get_object, delete_object) returned by `store()`.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from flask import current_app

_KEY = re.compile(r"^[a-z0-9_-]{1,40}(/[a-z0-9_-]{1,40}){0,3}\.[a-z0-9]{1,5}$")


class Storage(Protocol):
    def put(self, key: str, content: bytes) -> None: ...
    def open(self, key: str) -> BinaryIO: ...
    def delete(self, key: str) -> None: ...


def new_key(prefix: str, extension: str) -> str:
    """An unguessable key: nobody can find a file by trying names."""
    return f"{prefix}/{secrets.token_hex(16)}.{extension}"


class LocalDiskStorage:
    """Files under one directory; a key is a relative path (checked: no way out of it)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"not a storage key: {key!r}")
        return self.root / key

    def put(self, key: str, content: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file, then rename: a reader never sees half a file.
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(content)
            os.chmod(temporary, 0o640)  # mkstemp's 0600, readable by the group (backups)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def open(self, key: str) -> BinaryIO:
        """The file for reading; FileNotFoundError if there is none."""
        return self._path(key).open("rb")

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def store() -> Storage:
    return LocalDiskStorage(current_app.config["UPLOAD_DIR"])
