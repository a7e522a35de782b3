"""CPython only: real LittleFS 2 (littlefs-python, the same LittleFS 2.11
and disk version 2.1 as MicroPython 1.27's VfsLfs2) on a simflash.Region,
behind the os-like calls firmware/storage uses, with MicroPython's file
semantics and errors.

    fs = LfsFS(region)                  # mounts, or formats a blank flash
    with fs.open("outbox/tmp", "wb") as f: f.write(frame)
    fs.rename("outbox/tmp", "outbox/00000001v")

Errors are OSError(errno) as MicroPython's VfsLfs2 raises them (LittleFS
error codes are negative errnos). A power cut or EIO injected at the flash
(simflash.FlashFaults) surfaces here as PowerLoss / OSError(EIO) after the
LittleFS call that met it: littlefs-python cannot carry an exception out of
its block-device callback, so the callback reports LFS_ERR_IO and this
layer raises what the flash said. After a power cut, make a new LfsFS on
the same region (a reboot mounts again).
"""
import littlefs.lfs as lfs
from littlefs.errors import LittleFSError

import simflash
from simflash import PowerLoss

_DIR = 0x4000
_FILE = 0x8000


class _Ctx(lfs.UserContext):
    """littlefs-python's block device callbacks, on a simflash.Region."""

    def __init__(self, region):  # no super().__init__: no RAM buffer
        self.region = region
        self.fault = None

    def _failed(self, e):
        if self.fault is None:
            self.fault = e
        return -5  # LFS_ERR_IO

    def read(self, cfg, block, off, size):
        buf = bytearray(size)
        try:
            self.region.readblocks(block, buf, off)
        except (PowerLoss, OSError) as e:
            self._failed(e)
        return buf

    def prog(self, cfg, block, off, data):
        if self.fault is not None:
            return -5
        try:
            self.region.writeblocks(block, bytes(data), off)
        except (PowerLoss, OSError) as e:
            return self._failed(e)
        return 0

    def erase(self, cfg, block):
        if self.fault is not None:
            return -5
        try:
            self.region.ioctl(6, block)
        except (PowerLoss, OSError) as e:
            return self._failed(e)
        return 0

    def sync(self, cfg):
        return 0


def _config(region, ctx):
    bs = region.ioctl(5, 0)
    return lfs.LFSConfig(context=ctx, block_size=bs, block_count=region.ioctl(4, 0),
                         read_size=simflash.LFS_READ, prog_size=simflash.LFS_PROG,
                         lookahead_size=simflash.LFS_LOOKAHEAD,
                         cache_size=min(bs, 4 * max(simflash.LFS_READ, simflash.LFS_PROG)),
                         block_cycles=simflash.LFS_BLOCK_CYCLES)


class LfsFS:
    def __init__(self, region):
        self.region = region
        self._ctx = _Ctx(region)
        self._cfg = _config(region, self._ctx)
        self._open = []
        self._mount()

    def _mount(self):
        self._ctx.fault = None
        self._fs = lfs.LFSFilesystem()
        try:
            self._call(lfs.mount, self._fs, self._cfg)
        except OSError:
            self._ctx.fault = None
            self._call(lfs.format, self._fs, self._cfg)
            self._call(lfs.mount, self._fs, self._cfg)

    def unmount(self):
        self.power_cycle()

    def remount(self):
        """A reboot: LittleFS mounts afresh (files open before are gone,
        their unsynced writes lost)."""
        self.power_cycle()
        self._mount()

    def _call(self, fn, *args):
        """Run a LittleFS call; raise what the flash or LittleFS said."""
        ctx = self._ctx
        if ctx.fault is not None and isinstance(ctx.fault, PowerLoss):
            raise PowerLoss("flash is unpowered")
        try:
            r = fn(*args)
        except LittleFSError as e:
            f = ctx.fault
            if f is not None:
                ctx.fault = None if not isinstance(f, PowerLoss) else f
                raise f
            raise OSError(-e.code, e.name) from None
        f = ctx.fault
        if f is not None:
            ctx.fault = None if not isinstance(f, PowerLoss) else f
            raise f
        return r

    @staticmethod
    def _p(path):
        return "/" + simflash._norm(path)

    # -- os-like API ------------------------------------------------------
    # MicroPython's VfsLfs2 mode -> LittleFS flags (extmod/vfs_lfsx_file.c)
    _RD, _WR, _RDWR, _CREAT, _TRUNC, _APPEND = 1, 2, 3, 0x100, 0x400, 0x800
    _MODES = {"r": _RD, "w": _WR | _CREAT | _TRUNC, "a": _WR | _CREAT | _APPEND,
              "r+": _RDWR, "w+": _RDWR | _CREAT | _TRUNC, "a+": _RDWR | _CREAT | _APPEND}

    def open(self, path, mode="r"):
        flags = self._MODES.get(mode.replace("b", "").replace("t", ""))
        if flags is None:
            raise ValueError("mode %r" % mode)
        fh = self._call(lfs.file_open, self._fs, self._p(path), flags)
        f = LfsFile(self, fh, "b" not in mode, bool(flags & self._WR))
        self._open.append(f)
        return f

    def remove(self, path):
        st = self._call(lfs.stat, self._fs, self._p(path))
        if st.type == 2:
            raise OSError(21, "is a directory")  # os.remove of a directory
        self._call(lfs.remove, self._fs, self._p(path))

    def rename(self, old, new):
        self._call(lfs.rename, self._fs, self._p(old), self._p(new))

    def stat(self, path):
        p = self._p(path)
        if p == "/":
            return (_DIR, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        st = self._call(lfs.stat, self._fs, p)
        if st.type == 2:
            return (_DIR, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        return (_FILE, 0, 0, 0, 0, 0, st.size, 0, 0, 0)

    def mkdir(self, path):
        self._call(lfs.mkdir, self._fs, self._p(path))

    def rmdir(self, path):
        st = self._call(lfs.stat, self._fs, self._p(path))
        if st.type != 2:
            raise OSError(20, "not a directory")
        self._call(lfs.remove, self._fs, self._p(path))

    def ilistdir(self, path=""):
        out = []
        d = self._call(lfs.dir_open, self._fs, self._p(path))
        try:
            while True:
                st = self._call(lfs.dir_read, self._fs, d)
                if st is None:
                    break
                if st.name in (".", ".."):
                    continue
                out.append((st.name, _DIR if st.type == 2 else _FILE, 0,
                            0 if st.type == 2 else st.size))
        finally:
            lfs.dir_close(self._fs, d)
        return iter(out)

    def listdir(self, path=""):
        return sorted(e[0] for e in self.ilistdir(path))

    def statvfs(self, path=""):
        bs = self._cfg.block_size
        n = self._cfg.block_count
        used = self._call(lfs.fs_size, self._fs)
        free = max(0, n - used)
        return (bs, bs, n, free, free, 0, 0, 0, 0, 255)

    def read_bytes(self, path):
        """Host-side read of a whole file."""
        with self.open(path, "rb") as f:
            return f.read()

    def power_cycle(self):
        """Open files are gone (their unsynced writes with them)."""
        for f in self._open:
            f._fh = None
        self._open = []


class LfsFile:
    """A LittleFS file with MicroPython's stream API."""

    def __init__(self, fs, fh, text, writable):
        self._fs = fs
        self._fh = fh
        self._text = text
        self._writable = writable

    def _h(self):
        if self._fh is None:
            raise OSError(9, "file closed")
        return self._fh

    def read(self, n=-1):
        fs = self._fs
        if n is None or n < 0:
            size = fs._call(lfs.file_size, fs._fs, self._h())
            pos = fs._call(lfs.file_tell, fs._fs, self._h())
            n = max(0, size - pos)
        data = fs._call(lfs.file_read, fs._fs, self._h(), n) if n else b""
        return bytes(data).decode() if self._text else bytes(data)

    def readinto(self, buf):
        fs = self._fs
        data = fs._call(lfs.file_read, fs._fs, self._h(), len(buf))
        buf[:len(data)] = data
        return len(data)

    def readline(self):
        out = bytearray()
        while True:
            c = self._fs._call(lfs.file_read, self._fs._fs, self._h(), 1)
            if not c:
                break
            out += c
            if c == b"\n":
                break
        return out.decode() if self._text else bytes(out)

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def write(self, data):
        if not self._writable:
            raise OSError(9, "not open for writing")
        if isinstance(data, str):
            data = data.encode()
        return self._fs._call(lfs.file_write, self._fs._fs, self._h(), bytes(data))

    def flush(self):
        if self._fh is not None and self._writable:
            self._fs._call(lfs.file_sync, self._fs._fs, self._fh)

    def seek(self, off, whence=0):
        return self._fs._call(lfs.file_seek, self._fs._fs, self._h(), off, whence)

    def tell(self):
        return self._fs._call(lfs.file_tell, self._fs._fs, self._h())

    def close(self):
        fh, self._fh = self._fh, None
        if fh is None:
            return
        if self in self._fs._open:
            self._fs._open.remove(self)
        self._fs._call(lfs.file_close, self._fs._fs, fh)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_image(path, files, dirs=(), size=simflash.FLASH_SIZE):
    """Host side: a whole flash image (erased, `size` bytes of 0xFF) with
    `files` ({path: bytes}) in its filesystem, as `make deploy` and
    provisioning leave a board; a node opens it with existing=True."""
    with open(path, "wb") as f:
        f.write(b"\xff" * size)
    chip = simflash.FlashChip(str(path), size=size, existing=True)
    region = simflash.Region(chip, simflash.VFS_OFFSET, simflash.VFS_SIZE, kind="vfs")
    fs = LfsFS(region)
    for d in dirs:
        _makedirs(fs, d)
    for p, data in sorted(files.items()):
        parent = simflash._norm(p).rpartition("/")[0]
        if parent:
            _makedirs(fs, parent)
        with fs.open(p, "wb") as f:
            f.write(data)
    chip.close()
    return path


def _makedirs(fs, path):
    at = ""
    for part in simflash._norm(path).split("/"):
        at = at + "/" + part if at else part
        try:
            fs.mkdir(at)
        except OSError as e:
            if e.args[0] != 17:
                raise
