"""`python3 -m icmp_host build`: a Python probe into a component.

Runs componentize-py against the SDK's copy of the `icmp-host:probe`
WIT world, with the SDK and the probe's directory on the Python path:

    python3 -m icmp_host build [DIR] [-o OUT.wasm] [--module app] [--if-changed]

The module (`app.py` in DIR by default) decorates its entry point with
`@icmp_host.probe`. Only modules imported while it is built end up in
the component (a plugin has no files to import from later): import what
you use at the top of your modules.
"""

import argparse
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys

#: The componentize-py release this SDK is built and tested with.
COMPONENTIZE_PY = "0.25.1"

SDK_ROOT = pathlib.Path(__file__).resolve().parent.parent
WIT = pathlib.Path(__file__).resolve().parent / "wit"


class BuildError(Exception):
    """The build could not run or failed; the message says why."""


def componentize_py():
    """The componentize-py command: `$COMPONENTIZE_PY`, else on `PATH`."""
    found = os.environ.get("COMPONENTIZE_PY") or shutil.which("componentize-py")
    if not found:
        raise BuildError(
            "componentize-py not found: pip install componentize-py=="
            f"{COMPONENTIZE_PY} (or set COMPONENTIZE_PY to its path)")
    return found


def version(command):
    """componentize-py's version string."""
    out = subprocess.run([command, "--version"], capture_output=True, text=True)
    return out.stdout.strip().rsplit(" ", 1)[-1]


def _files(root):
    """The build inputs under `root`: Python and WIT files, sorted."""
    root = pathlib.Path(root)
    return sorted(p for p in root.rglob("*")
                  if p.suffix in (".py", ".wit") and "__pycache__" not in p.parts)


def digest(directory, module, world, wit_dirs, componentize):
    """A digest of everything a build depends on."""
    h = hashlib.sha256()
    h.update(f"{module}\0{world}\0{componentize}\0".encode())
    for root in (pathlib.Path(__file__).parent, pathlib.Path(directory), *wit_dirs):
        for path in _files(root):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def build(directory, output, module="app", quiet=False, wit_dirs=(), world="probe",
          if_changed=False):
    """Builds `module` of `directory` into the component `output`; with
    `if_changed`, only when an input changed since the last build (the
    digest is kept next to it, in `output.inputs`). Returns whether it
    built."""
    directory = pathlib.Path(directory).resolve()
    if not (directory / f"{module}.py").is_file() and not (directory / module).is_dir():
        raise BuildError(f"{directory}: no {module}.py to build (try --module)")
    command = componentize_py()
    found = version(command)
    if found != COMPONENTIZE_PY and not quiet:
        print(f"warning: componentize-py {found}; this SDK is tested with "
              f"{COMPONENTIZE_PY}", file=sys.stderr)
    output = pathlib.Path(output).resolve()
    stamp = output.with_name(output.name + ".inputs")
    wit_dirs = [pathlib.Path(d).resolve() for d in wit_dirs]
    inputs = digest(directory, module, world, wit_dirs, found)
    if if_changed and output.is_file() and stamp.is_file() and stamp.read_text() == inputs:
        return False
    output.parent.mkdir(parents=True, exist_ok=True)
    args = [command, "-d", str(WIT)]
    for d in wit_dirs:
        args += ["-d", str(d)]
    args += ["-w", world, "componentize", "-p", str(SDK_ROOT), "-p", str(directory), module,
             "-o", str(output)]
    if quiet:
        args.insert(1, "--quiet")
    stamp.unlink(missing_ok=True)
    # No bytecode files next to the sources: the component holds what it needs.
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    result = subprocess.run(args, cwd=directory, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        # componentize-py's own backtrace follows the Python error: keep the error.
        cut = next((n for n, line in enumerate(detail) if line.startswith("Stack backtrace")),
                   len(detail))
        raise BuildError(f"componentize-py failed for {directory / module}:\n"
                         + "\n".join(detail[:cut]).strip())
    stamp.write_text(inputs)
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python3 -m icmp_host build",
        description="Build a Python probe into an icmp-host plugin (a WebAssembly "
                    "component) with componentize-py.")
    parser.add_argument("directory", nargs="?", default=".",
                        help="the probe's directory (default: .)")
    parser.add_argument("-o", "--output", help="the component to write "
                        "(default: DIR/<directory name>.wasm)")
    parser.add_argument("-m", "--module", default="app",
                        help="the module with the @probe entry point (default: app)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors")
    parser.add_argument("--if-changed", action="store_true",
                        help="build only when the probe, the SDK or componentize-py changed")
    parser.add_argument("--wit", action="append", default=[], metavar="DIR",
                        help="more WIT packages (for a world that extends probe)")
    parser.add_argument("--world", default="probe", help="the world to target (default: probe)")
    a = parser.parse_args(argv)
    directory = pathlib.Path(a.directory).resolve()
    output = pathlib.Path(a.output or directory / f"{directory.name}.wasm")
    try:
        built = build(directory, output, a.module, a.quiet, a.wit, a.world, a.if_changed)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not a.quiet:
        size = output.stat().st_size // 1024
        print(f"{'built' if built else 'up to date:'} {output} ({size} KiB)")
    return 0
