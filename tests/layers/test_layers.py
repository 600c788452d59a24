# SPDX-License-Identifier: LGPL-2.1-or-later
# The layering rule of docs/ARCHITECTURE.md holds for the tree, and the checker does catch a
# file that includes a header of a higher layer or of a sibling (on a copy of the tree).
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get('VMB_SOURCE_ROOT') or os.path.dirname(os.path.dirname(HERE))
CHECK = os.path.join(HERE, 'check-layers.py')
FOLDERS = ('docs', 'broker', 'domains')


def check(root):
    return subprocess.run([sys.executable, CHECK, root], capture_output=True, text=True,
                          timeout=60)


class Layers(unittest.TestCase):
    def test_tree_keeps_the_layers(self):
        r = check(SRC)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(' 0 violation(s)', r.stdout)

    def copy_with(self, path, line):
        root = tempfile.mkdtemp(prefix='vmb-layers-')
        self.addCleanup(shutil.rmtree, root, True)
        for folder in FOLDERS:
            shutil.copytree(os.path.join(SRC, folder), os.path.join(root, folder),
                            ignore=shutil.ignore_patterns('*.o', '*.a'))
        with open(os.path.join(root, path), 'a', encoding='utf-8') as f:
            f.write(line + '\n')
        return root

    def test_a_higher_layer_is_caught(self):
        r = check(self.copy_with('broker/db/db-pool.c', '#include "svc-vms.h"'))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn('broker/db/db-pool.c:', r.stdout)
        self.assertIn('broker/db may not include svc-vms.h (broker/services)', r.stdout)

    def test_a_sibling_is_caught(self):
        r = check(self.copy_with('broker/http/http-server.c', '#include "db-pool.h"'))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn('broker/http may not include db-pool.h (broker/db)', r.stdout)

    def test_an_unknown_header_is_caught(self):
        r = check(self.copy_with('domains/dom-xml.c', '#include "nowhere.h"'))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn('"nowhere.h" is no header of a layer', r.stdout)

    def test_a_database_call_from_a_handler_is_caught(self):
        r = check(self.copy_with('broker/api/api-health.c',
                                 'static void f(DbConn *c) { db_vms_list(c, NULL, NULL); }'))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn('broker/api may use db_* for types only, not db_vms_list', r.stdout)

    def test_a_database_function_as_a_value_is_caught(self):
        r = check(self.copy_with('broker/api/api-vms.c',
                                 'static void *g = (void *) db_cache_lookup;'))
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertIn('not db_cache_lookup', r.stdout)

    def test_type_helpers_comments_and_strings_pass(self):
        r = check(self.copy_with('broker/api/api-vms.c',
                                 '/* db_vms_list() */ static const char *s = "db_pool_ping()";\n'
                                 'static void h(DbVm *v) { db_vm_free(v); }'))
        self.assertEqual(r.returncode, 0, r.stdout)


if __name__ == '__main__':
    unittest.main(verbosity=2)
