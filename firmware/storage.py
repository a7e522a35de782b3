"""The node's flash filesystem: one object for every module that keeps files.

    from firmware import storage
    fs = storage.fs()
    with fs.open("config.json") as f: ...
    fs.rename("config.json.new", "config.json")

On the chip it is LittleFS through the built-in open() and os, rooted at
"/". A simulated node (simulator, device tests) hands its flash model
(tools/shims/flashfs.FlashFS) to use(): that is how power loss, a full
flash and a fresh board reach the firmware. Paths are relative to the
filesystem root.

Non-guarantee: on the chip a write is durable only after close(); rename
is atomic (LittleFS), so replace a file by writing NAME.new and renaming.
"""
import os


class Native:
    """The chip's own filesystem."""

    def open(self, path, mode="r"):
        return open("/" + path, mode)

    def remove(self, path):
        os.remove("/" + path)

    def rename(self, old, new):
        os.rename("/" + old, "/" + new)

    def stat(self, path):
        return os.stat("/" + path)

    def mkdir(self, path):
        os.mkdir("/" + path)

    def rmdir(self, path):
        os.rmdir("/" + path)

    def ilistdir(self, path):
        return os.ilistdir("/" + path)


_fs = None


def fs():
    global _fs
    if _fs is None:
        _fs = Native()
    return _fs


def use(obj):
    """Route the firmware's file access to `obj` (a simulated flash)."""
    global _fs
    _fs = obj


def read_text(path):
    """Whole file as str; OSError if it is missing."""
    with fs().open(path, "r") as f:
        return f.read()


def write_atomic(path, data):
    """Replace `path` with `data` so that a power loss leaves the old or
    the new content, never a mix."""
    f = fs()
    tmp = path + ".new"
    with f.open(tmp, "w") as out:
        out.write(data)
    f.rename(tmp, path)


def exists(path):
    try:
        fs().stat(path)
        return True
    except OSError:
        return False


def makedirs(path):
    """mkdir -p for a slash-separated relative path."""
    f = fs()
    at = ""
    for part in path.split("/"):
        at = at + "/" + part if at else part
        if not exists(at):
            f.mkdir(at)


def remove_tree(path):
    """Delete a directory and everything under it (missing: nothing)."""
    f = fs()
    if not exists(path):
        return
    for entry in list(f.ilistdir(path)):
        sub = path + "/" + entry[0]
        if entry[1] == 0x4000:
            remove_tree(sub)
        else:
            f.remove(sub)
    f.rmdir(path)
