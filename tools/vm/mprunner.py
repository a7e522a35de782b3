"""Runs device-logic test modules on a MicroPython VM (wasm or unix port).

Usage (unix port):  micropython tools/vm/mprunner.py test_module [test_name]
On wasm the Node driver imports this module and calls run_module().
Prints one line per test - PASS/FAIL/SKIP <module>::<test> - a traceback
for failures, then `RESULT <module> <passed> <failed> <skipped>`.
"""
import sys


def run_module(modname, only=None):
    import devtest
    import simboard

    from firmware import storage
    passed = failed = skipped = 0
    try:
        mod = __import__(modname)
    except Exception as e:  # noqa: BLE001 - a module that fails to import is one failed test
        print("FAIL %s::<import>" % modname)
        sys.print_exception(e)
        print("RESULT %s 0 1 0" % modname)
        return 1
    names = sorted([n for n in dir(mod) if n.startswith("test_")])
    for name in names:
        if only and name != only:
            continue
        fn = getattr(mod, name)
        storage.use(simboard.new_board().fs)  # the firmware's files live on its flash
        try:
            fn()
            passed += 1
            print("PASS %s::%s" % (modname, name))
        except devtest.Skipped as e:
            skipped += 1
            print("SKIP %s::%s %s" % (modname, name, e.args[0] if e.args else ""))
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 - NodeReset / PowerLoss escaping a test fail it too
            failed += 1
            print("FAIL %s::%s" % (modname, name))
            sys.print_exception(e)
    print("RESULT %s %d %d %d" % (modname, passed, failed, skipped))
    return failed


if __name__ == "__main__" and len(sys.argv) > 1:
    rc = run_module(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
    sys.exit(1 if rc else 0)
