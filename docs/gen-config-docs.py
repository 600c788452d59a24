#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# Writes vmbroker.conf(5) and the example /etc/vmbroker/vmbroker.conf from README.md's
# configuration table, the one table of keys (test-config-doc holds it equal to the code's).
#   gen-config-docs.py README.md man5|example OUTPUT VERSION
import re
import sys
import textwrap

ROW = re.compile(r'^\| `([a-z_]+)\.([a-z0-9_]+)` \| (.*) \| (.*) \|$')


def read_rows(readme):
    """[(section, key, meaning, default)] of the table under '## Configuration'."""
    with open(readme, encoding='utf-8') as f:
        text = f.read()
    part = text.split('\n## Configuration\n', 1)[1].split('\n## ', 1)[0]
    rows = [m.groups() for line in part.splitlines() if (m := ROW.match(line))]
    if len(rows) < 20:
        sys.exit(f'{readme}: the configuration table has only {len(rows)} rows')
    # Each section once, in the order sections first appear; keys in table order within.
    order = list(dict.fromkeys(r[0] for r in rows))
    return sorted(rows, key=lambda r: order.index(r[0]))


def plain(md):
    """Markdown of a cell as plain text: links lose their target, code its backticks."""
    md = re.sub(r'\[([^\]]+)\]\([^)]*\)', r'\1', md)
    return md.replace('`', '')


def roff(md):
    """Markdown of a cell as roff: code in bold, links as their text."""
    md = re.sub(r'\[([^\]]+)\]\([^)]*\)', r'\1', md)
    md = md.replace('\\', '\\e').replace('-', '\\-')
    md = re.sub(r'`([^`]*)`', r'\\fB\1\\fR', md)
    return md.lstrip(".'")


def man5(rows, version):
    out = [f'.TH VMBROKER.CONF 5 "" "vmbroker {version}" "File Formats"',
           '.SH NAME', 'vmbroker.conf \\- configuration of the vmbroker VM broker',
           '.SH SYNOPSIS', '.B /etc/vmbroker/vmbroker.conf',
           '.SH DESCRIPTION',
           'An INI file (GLib key file): sections in brackets, one \\fBkey = value\\fR per line, '
           'comments starting with \\fB#\\fR. Every key can also be set in the environment as '
           '\\fBVMBROKER_\\fR\\fISECTION\\fR\\fB_\\fR\\fIKEY\\fR in upper case, which wins over '
           'the file. Every value is checked when a command starts; a bad value, an unknown '
           'section or key, or an unknown \\fBVMBROKER_*\\fR variable stops it with one line '
           'naming the key, the value and why.',
           '.PP',
           'A running \\fBvmbroker serve\\fR rereads the file on SIGHUP: \\fBlog.level\\fR '
           'applies at once; every other key applies at the next restart (the reload names '
           'the keys that changed). The templates in \\fBtemplates.dir\\fR are reread too.']
    section = None
    for sec, key, meaning, default in rows:
        if sec != section:
            out += [f'.SH "[{sec}]"']
            section = sec
        out += ['.TP', f'.B {key}', roff(meaning) + '.', '.br',
                'Default: ' + roff(default) + '.']
    out += ['.SH FILES', '.TP', '.I /etc/vmbroker/vmbroker.conf',
            'read by every command unless \\fB\\-\\-config\\fR names another file',
            '.SH SEE ALSO', '.BR vmbroker (8)', '']
    return '\n'.join(out)


def example(rows, version):
    out = ['# /etc/vmbroker/vmbroker.conf: the configuration of vmbroker ' + version + '.',
           '# Every key is listed, commented out, with its default; see vmbroker.conf(5).',
           '# VMBROKER_<SECTION>_<KEY> in the environment overrides a key.',
           '# `systemctl reload vmbroker` (SIGHUP) applies log.level and rereads the templates;',
           '# the rest needs a restart.']
    section = None
    for sec, key, meaning, default in rows:
        if sec != section:
            out += ['', f'[{sec}]']
            section = sec
        codes = re.findall(r'`([^`]*)`', default)
        value = codes[0] if len(codes) == 1 and default.startswith('`') else ''
        if '<' in value:
            value = ''  # derived from other keys (e.g. http://<listen>)
        text = plain(meaning)
        out += textwrap.wrap(f'{text} (default: {plain(default)})', 92,
                             initial_indent='# ', subsequent_indent='# ')
        out.append(f'#{key} = {value}'.rstrip())
    return '\n'.join(out) + '\n'


def main():
    readme, kind, output, version = sys.argv[1:5]
    rows = read_rows(readme)
    text = man5(rows, version) if kind == 'man5' else example(rows, version)
    with open(output, 'w', encoding='utf-8') as f:
        f.write(text)


if __name__ == '__main__':
    main()
