#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# The layering test: every #include "x.h" of the daemon's sources must name a header of the
# file's own folder or of a folder its layer may use. The rule is read from one place, the
# `layers` block of docs/ARCHITECTURE.md ("folder: may use ..."), so the document and the
# check cannot drift apart. The `types-only` block of the same file names layers whose
# headers a folder includes for their types alone: of their functions it may call only the
# string tables, copies and frees (`_to_string`, `_from_string`, `_copy`, `_free`), so that,
# say, handlers reach PostgreSQL through services only. Prints each violation with file:line
# and exits 1 if any.
import os
import re
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
GENERATED = {'build-config.h'}
TYPE_HELPERS = ('_to_string', '_from_string', '_copy', '_free')
COMMENT = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"', re.S)


def read_layers():
    """{folder: set of folders it may use} from the ```layers block of ARCHITECTURE.md."""
    text = open(os.path.join(SRC, 'docs', 'ARCHITECTURE.md'), encoding='utf-8').read()
    m = re.search(r'```layers\n(.*?)```', text, re.S)
    if not m:
        sys.exit('check-layers: docs/ARCHITECTURE.md has no ```layers block')
    layers = {}
    for line in m.group(1).splitlines():
        line = line.split('#', 1)[0].strip()
        if not line:
            continue
        folder, _, uses = line.partition(':')
        layers[folder.strip()] = set(uses.split())
    return layers


def read_types_only():
    """[(folder, prefix)] from the ```types-only block: "folder: prefix ..."."""
    text = open(os.path.join(SRC, 'docs', 'ARCHITECTURE.md'), encoding='utf-8').read()
    m = re.search(r'```types-only\n(.*?)```', text, re.S)
    rules = []
    for line in (m.group(1).splitlines() if m else []):
        line = line.split('#', 1)[0].strip()
        if line:
            folder, _, prefixes = line.partition(':')
            rules += [(folder.strip(), p) for p in prefixes.split()]
    return rules


def check_types_only(rules):
    """Calls of a types-only layer's functions beyond its type helpers, and those functions
    cast to pass as values ("(GDestroyNotify) db_x,")."""
    bad = []
    for folder, prefix in rules:
        use = re.compile(r'\b(' + re.escape(prefix) + r'\w+)\s*\(|\)\s*(' +
                         re.escape(prefix) + r'\w+)\s*[,);]')
        for name in sorted(os.listdir(os.path.join(SRC, folder))):
            if not name.endswith(('.c', '.h')):
                continue
            path = os.path.join(folder, name)
            text = open(os.path.join(SRC, path), encoding='utf-8').read()
            # Comments and strings blanked, newlines kept, so that line numbers hold.
            code = COMMENT.sub(lambda m: re.sub(r'[^\n]', ' ', m.group(0)), text)
            for m in use.finditer(code):
                fn = m.group(1) or m.group(2)
                if not fn.endswith(TYPE_HELPERS):
                    n = code.count('\n', 0, m.start()) + 1
                    bad.append(f'{path}:{n}: {folder} may use {prefix}* for types only, '
                               f'not {fn}')
    return bad


def main():
    layers = read_layers()
    owner = {}  # header basename -> folder
    for folder in layers:
        for name in os.listdir(os.path.join(SRC, folder)):
            if name.endswith('.h'):
                if name in owner:
                    sys.exit(f'check-layers: {name} is in both {owner[name]} and {folder}')
                owner[name] = folder
    bad, files = [], 0
    for folder, uses in layers.items():
        for name in sorted(os.listdir(os.path.join(SRC, folder))):
            if not name.endswith(('.c', '.h')):
                continue
            files += 1
            path = os.path.join(folder, name)
            with open(os.path.join(SRC, path), encoding='utf-8') as f:
                for n, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if not m or m.group(1) in GENERATED:
                        continue
                    header = os.path.basename(m.group(1))
                    target = owner.get(header)
                    if target is None:
                        bad.append(f'{path}:{n}: "{m.group(1)}" is no header of a layer')
                    elif target != folder and target not in uses:
                        bad.append(f'{path}:{n}: {folder} may not include {header} '
                                   f'({target}); it may use: {" ".join(sorted(uses)) or "-"}')
    bad += check_types_only(read_types_only())
    for b in bad:
        print(b)
    print(f'check-layers: {files} files in {len(layers)} layers, {len(bad)} violation(s)')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
