"""`micropython` for CPython only (on the VMs the built-in always wins: it
is not extensible). const() is identity; native/viper decorators are no-ops;
heap_lock() cannot be enforced here, so allocation is proven on the VMs."""


def const(x):
    return x


def native(f):
    return f


def viper(f):
    return f


def schedule(func, arg):
    func(arg)


def alloc_emergency_exception_buf(size):
    pass


_locks = 0


def heap_lock():
    global _locks
    _locks += 1
    return _locks - 1


def heap_unlock():
    global _locks
    _locks -= 1
    return _locks


def heap_locked():
    return _locks


def mem_info(verbose=None):
    print("mem: not available under CPython")


def opt_level(level=None):
    return 0


kbd_intr_char = 3


def kbd_intr(chr):
    """Recorded only: CPython has no REPL to guard (tests read kbd_intr_char)."""
    global kbd_intr_char
    kbd_intr_char = chr
