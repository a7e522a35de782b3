"""Legacy flash model, used only by the emulated USB board (tools/emu), whose
WebAssembly VM has no LittleFS: a LittleFS-like filesystem over the fault
counter of tools/shims/simflash.py (every other simulated node runs real
LittleFS 2 on simflash).

Semantics (those of LittleFS v2 on the ESP32, which power-loss tests rely on):
- a file opened for writing shows its new content only after flush()/close();
  power lost before that leaves the previous content intact;
- rename() and remove() are atomic;
- every flash program/erase step is one "op" on FlashFaults: write() calls,
  syncs, renames, removes, mkdirs - plus NVS commits and partition block
  writes from the esp32 shim. A test counts the ops of a clean run, then
  replays it with power lost at op k for every k.
- capacity is counted in 4096-byte blocks (one per directory, at least one
  per file); running out raises OSError(ENOSPC) and changes nothing.
Non-guarantees: no wear model, no bit-level corruption of a half-programmed
block (LittleFS's copy-on-write hides those), paths are absolute or relative
to "/" only.

The object offers the os-like calls device code uses (open, remove, rename,
stat, listdir, ilistdir, mkdir, rmdir, statvfs) and is also a MicroPython
user VFS, so on the VMs it can be `os.mount`ed and reached through the
built-in open().
"""

_EIO = 5
_ENOENT = 2
_EEXIST = 17
_EISDIR = 21
_ENOTDIR = 20
_ENOSPC = 28
_ENOTEMPTY = 39
_EINVAL = 22


from simflash import FlashFaults, PowerLoss  # noqa: E402, F401 (one of each, shared)


def _norm(path):
    parts = []
    for p in path.split("/"):
        if p == "" or p == ".":
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/" + "/".join(parts)


def _parent(path):
    i = path.rfind("/")
    return "/" if i <= 0 else path[:i]


class FlashFile:
    def __init__(self, fs, path, data, mode):
        self._fs = fs
        self._path = path
        self._text = "b" not in mode
        self._writable = "w" in mode or "a" in mode or "+" in mode
        self._buf = bytearray(data)
        self._pos = len(data) if "a" in mode else 0
        self._dirty = "w" in mode
        self._closed = False

    # reading
    def read(self, n=-1):
        end = len(self._buf) if n is None or n < 0 else min(len(self._buf), self._pos + n)
        out = bytes(self._buf[self._pos:end])
        self._pos = end
        return out.decode() if self._text else out

    def readinto(self, buf):
        n = min(len(buf), len(self._buf) - self._pos)
        buf[:n] = self._buf[self._pos:self._pos + n]
        self._pos += n
        return n

    def readline(self):
        i = self._buf.find(b"\n", self._pos)
        end = len(self._buf) if i < 0 else i + 1
        out = bytes(self._buf[self._pos:end])
        self._pos = end
        return out.decode() if self._text else out

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    # writing
    def write(self, data):
        if not self._writable:
            raise OSError(_EINVAL)
        if isinstance(data, str):
            data = data.encode()
        end = self._pos + len(data)
        self._fs._reserve(self._path, max(end, len(self._buf)))
        self._fs.faults.op("write")
        if end > len(self._buf):
            self._buf.extend(b"\x00" * (end - len(self._buf)))
        self._buf[self._pos:end] = data
        self._pos = end
        self._dirty = True
        return len(data)

    def flush(self):
        if self._dirty and not self._closed:
            self._fs.faults.op("sync")
            self._fs._files[self._path] = bytes(self._buf)
            self._dirty = False

    def seek(self, off, whence=0):
        base = 0 if whence == 0 else (self._pos if whence == 1 else len(self._buf))
        self._pos = max(0, base + off)
        return self._pos

    def tell(self):
        return self._pos

    def close(self):
        if not self._closed:
            try:
                self.flush()
            finally:
                self._closed = True
                self._fs._open.remove(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class FlashFS:
    BLOCK = 4096

    def __init__(self, faults=None, blocks=512):
        self.faults = faults if faults is not None else FlashFaults()
        self.blocks = blocks
        self._files = {}  # path -> bytes (synced content)
        self._dirs = {"/"}
        self._open = []
        self._cwd = "/"

    # -- capacity ---------------------------------------------------------
    def _blocks_used(self, override_path=None, override_size=0):
        n = len(self._dirs) - 1
        for p, d in self._files.items():
            size = override_size if p == override_path else len(d)
            n += max(1, (size + self.BLOCK - 1) // self.BLOCK)
        if override_path is not None and override_path not in self._files:
            n += max(1, (override_size + self.BLOCK - 1) // self.BLOCK)
        return n

    def _reserve(self, path, size):
        if self._blocks_used(path, size) > self.blocks:
            raise OSError(_ENOSPC)

    def _path(self, path):
        if not path.startswith("/"):
            path = self._cwd.rstrip("/") + "/" + path
        return _norm(path)

    # -- os-like API ------------------------------------------------------
    def open(self, path, mode="r"):
        path = self._path(path)
        if path in self._dirs:
            raise OSError(_EISDIR)
        if _parent(path) not in self._dirs:
            raise OSError(_ENOENT)
        if "w" in mode:
            data = b""
            if path not in self._files:
                self._reserve(path, 0)
        elif path in self._files:
            data = self._files[path]
        elif "a" in mode:
            self._reserve(path, 0)
            data = b""
        else:
            raise OSError(_ENOENT)
        f = FlashFile(self, path, data, mode)
        self._open.append(f)
        if "w" in mode and path not in self._files:
            # LittleFS creates the entry at open; content appears at sync
            self.faults.op("create")
            self._files[path] = b""
        return f

    def remove(self, path):
        path = self._path(path)
        if path not in self._files:
            raise OSError(_EISDIR if path in self._dirs else _ENOENT)
        self.faults.op("remove")
        del self._files[path]

    def rename(self, old, new):
        old = self._path(old)
        new = self._path(new)
        if old not in self._files and old not in self._dirs:
            raise OSError(_ENOENT)
        if _parent(new) not in self._dirs:
            raise OSError(_ENOENT)
        if old in self._dirs:
            if new in self._files or (new in self._dirs and self._children(new)):
                raise OSError(_ENOTEMPTY)
            self.faults.op("rename")
            moved = [d for d in self._dirs if d == old or d.startswith(old + "/")]
            for d in moved:
                self._dirs.discard(d)
                self._dirs.add(new + d[len(old):])
            for p in [p for p in self._files if p.startswith(old + "/")]:
                self._files[new + p[len(old):]] = self._files.pop(p)
            return
        if new in self._dirs:
            raise OSError(_EISDIR)
        self.faults.op("rename")
        self._files[new] = self._files.pop(old)

    def mkdir(self, path):
        path = self._path(path)
        if path in self._dirs or path in self._files:
            raise OSError(_EEXIST)
        if _parent(path) not in self._dirs:
            raise OSError(_ENOENT)
        if self._blocks_used() + 1 > self.blocks:
            raise OSError(_ENOSPC)
        self.faults.op("mkdir")
        self._dirs.add(path)

    def rmdir(self, path):
        path = self._path(path)
        if path not in self._dirs or path == "/":
            raise OSError(_ENOENT if path not in self._dirs else _EINVAL)
        if self._children(path):
            raise OSError(_ENOTEMPTY)
        self.faults.op("rmdir")
        self._dirs.discard(path)

    def _children(self, path):
        pre = path.rstrip("/") + "/"
        names = []
        for p in self._dirs:
            if p != "/" and p.startswith(pre) and "/" not in p[len(pre):]:
                names.append((p[len(pre):], 0x4000, 0))
        for p, d in self._files.items():
            if p.startswith(pre) and "/" not in p[len(pre):]:
                names.append((p[len(pre):], 0x8000, len(d)))
        names.sort()
        return names

    def ilistdir(self, path="/"):
        path = self._path(path)
        if path not in self._dirs:
            raise OSError(_ENOENT)
        for name, kind, size in self._children(path):
            yield (name, kind, 0, size)

    def listdir(self, path="/"):
        return [e[0] for e in self.ilistdir(path)]

    def stat(self, path):
        path = self._path(path)
        if path in self._dirs:
            return (0x4000, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        if path in self._files:
            return (0x8000, 0, 0, 0, 0, 0, len(self._files[path]), 0, 0, 0)
        raise OSError(_ENOENT)

    def statvfs(self, path="/"):
        free = self.blocks - self._blocks_used()
        return (self.BLOCK, self.BLOCK, self.blocks, free, free, 0, 0, 0, 0, 255)

    def chdir(self, path):
        path = self._path(path)
        if path not in self._dirs:
            raise OSError(_ENOENT)
        self._cwd = path

    def getcwd(self):
        return self._cwd

    def mount(self, readonly, mkfs):
        pass

    def umount(self):
        pass

    # -- power ------------------------------------------------------------
    def power_cycle(self):
        """Drop open handles: unsynced writes are gone, synced data stays."""
        for f in self._open:
            f._closed = True
        self._open = []

    def remount(self):
        self.power_cycle()

    def unmount(self):
        pass

    def read_bytes(self, path):
        """Host-side peek at synced content (no fault op)."""
        try:
            return self._files[self._path(path)]
        except KeyError:
            raise OSError(_ENOENT)
