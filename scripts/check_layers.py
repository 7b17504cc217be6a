#!/usr/bin/env python3
"""Checks that the folders under src/ include each other only as allowed.

The allowed graph lives in one place, docs/architecture.md, between the lines
`<!-- layers:begin -->` and `<!-- layers:end -->`, one folder a line:

    - `detect`: core, io, audio, sensor, models

(a folder may always include its own headers and the public headers under
include/mmfuse/; "—" or nothing after the colon = no other folder).

The script fails (exit 1) when
  - a file under src/<folder>/ includes a header of a folder <folder> may not include
    (printed as file:line and the forbidden edge),
  - a public header under include/mmfuse/ includes anything but another public header
    or a standard / system header,
  - an include names a src/ folder the graph does not list, or a folder under src/ is
    missing from the graph,
  - the allowed graph itself has a cycle.

Usage: scripts/check_layers.py [--root DIR] [--doc FILE] [--print]
  --root   the repository (default: the folder above this script)
  --doc    the file holding the graph (default: <root>/docs/architecture.md)
  --print  print the allowed graph (one "folder: deps" line each) after checking
Python 3 standard library only.
"""

import argparse
import os
import re
import sys

BEGIN = "<!-- layers:begin -->"
END = "<!-- layers:end -->"
PUBLIC = "mmfuse"  # include/mmfuse/: the public API, includable from everywhere
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')
SOURCE_EXTS = (".h", ".hpp", ".cpp", ".cc", ".c", ".in", ".inc")


def parse_graph(doc_path):
    """Returns {folder: set(folders it may include)} from the marked block of the doc."""
    try:
        with open(doc_path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise SystemExit(f"check_layers: cannot read {doc_path}: {e}")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"check_layers: {doc_path}: no '{BEGIN}' ... '{END}' block")
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    graph = {}
    line_re = re.compile(r"^\s*[-*]\s*`([\w./-]+)`\s*:\s*(.*)$")
    for n, line in enumerate(block.splitlines(), 1):
        if not line.strip() or line.strip().startswith("```"):
            continue
        m = line_re.match(line)
        if not m:
            continue
        folder = m.group(1).rstrip("/").removeprefix("src/")
        deps = set()
        for dep in re.split(r"[,\s]+", m.group(2).replace("`", "")):
            dep = dep.strip().rstrip("/").removeprefix("src/")
            if dep and dep not in ("—", "-", "(none)", "none"):
                deps.add(dep)
        if folder in graph:
            raise SystemExit(f"check_layers: {doc_path}: folder '{folder}' listed twice")
        graph[folder] = deps
    if not graph:
        raise SystemExit(f"check_layers: {doc_path}: the layers block lists no folder")
    return graph


def find_cycle(graph):
    """Returns one cycle as a list of folders (first == last), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = {v: WHITE for v in graph}
    stack = []

    def visit(v):
        color[v] = GREY
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if color.get(w, BLACK) == GREY:
                return stack[stack.index(w):] + [w]
            if color.get(w) == WHITE:
                c = visit(w)
                if c:
                    return c
        stack.pop()
        color[v] = BLACK
        return None

    for v in sorted(graph):
        if color[v] == WHITE:
            c = visit(v)
            if c:
                return c
    return None


def includes(path):
    """Yields (line number, '<' or '"', included name) for each #include of a file."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            m = INCLUDE_RE.match(line)
            if m:
                yield n, m.group(1), m.group(2).strip()


def source_files(top):
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(SOURCE_EXTS):
                yield os.path.join(dirpath, name)


def check(root, graph):
    errors = []
    src = os.path.join(root, "src")
    folders = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    for d in folders:
        if d not in graph:
            errors.append(f"src/{d}/: folder missing from the allowed graph in docs/architecture.md")
    for d in sorted(graph):
        for dep in sorted(graph[d]):
            if dep not in graph and dep != PUBLIC:
                errors.append(f"allowed graph: '{d}' may include '{dep}', which the graph does not list")

    cycle = find_cycle(graph)
    if cycle:
        errors.append("allowed graph has a cycle: " + " -> ".join(cycle))

    known = set(folders) | set(graph)
    for path in source_files(src):
        rel = os.path.relpath(path, root)
        parts = os.path.relpath(path, src).split(os.sep)
        if len(parts) < 2:
            continue  # a file directly in src/ belongs to no folder
        folder = parts[0]
        allowed = graph.get(folder, set())
        for n, kind, name in includes(path):
            if name.startswith("."):
                # relative include: resolve it to the folder it lands in
                target = os.path.normpath(os.path.join(os.path.dirname(path), name))
                tparts = os.path.relpath(target, src).split(os.sep)
                if tparts[0] == os.pardir:
                    errors.append(f"{rel}:{n}: #include {kind}{name}: reaches outside src/")
                    continue
                dep = tparts[0] if len(tparts) > 1 else None
            elif "/" in name:
                dep = name.split("/", 1)[0]
                if dep not in known and dep != PUBLIC:
                    if kind == "<":
                        continue  # a system / third-party header (<nlohmann/json.hpp>)
                    errors.append(
                        f"{rel}:{n}: #include \"{name}\": '{dep}' is no folder of src/ or include/")
                    continue
            else:
                if kind == '"' and not os.path.exists(os.path.join(os.path.dirname(path), name)):
                    errors.append(f"{rel}:{n}: #include \"{name}\": name it by its folder "
                                  f"(\"{folder}/{name}\")")
                continue  # <cstdio>, or a header next to the file
            if dep is None or dep == folder or dep == PUBLIC:
                continue
            if dep not in allowed:
                may = ", ".join(sorted(allowed)) or "no other folder"
                errors.append(f"{rel}:{n}: forbidden include {folder} -> {dep} (\"{name}\"); "
                              f"{folder} may include: {may}")

    public = os.path.join(root, "include", PUBLIC)
    if os.path.isdir(public):
        for path in source_files(public):
            rel = os.path.relpath(path, root)
            for n, kind, name in includes(path):
                first = name.split("/", 1)[0] if "/" in name else None
                if first == PUBLIC:
                    continue
                if kind == '"':
                    errors.append(f"{rel}:{n}: public header includes \"{name}\": public headers "
                                  f"may include only mmfuse/... and standard / system headers")
                elif first in known:
                    errors.append(f"{rel}:{n}: public header includes <{name}> from src/{first}/")
    return errors


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--root", default=os.path.dirname(here))
    ap.add_argument("--doc", default=None)
    ap.add_argument("--print", action="store_true", dest="print_graph")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    doc = args.doc or os.path.join(root, "docs", "architecture.md")
    graph = parse_graph(doc)
    errors = check(root, graph)
    for e in errors:
        print(e, file=sys.stderr)
    if args.print_graph:
        for d in sorted(graph):
            print(f"{d}: {', '.join(sorted(graph[d])) or '-'}")
    if errors:
        print(f"check_layers: {len(errors)} problem(s); the allowed graph is in "
              f"{os.path.relpath(doc, root)}", file=sys.stderr)
        return 1
    print(f"check_layers: ok ({len(graph)} folders, includes follow {os.path.relpath(doc, root)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
