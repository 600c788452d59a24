# SPDX-License-Identifier: LGPL-2.1-or-later
# contrib/openapi.yaml is valid OpenAPI 3 under a real validator (Redocly CLI, pinned in
# tests/browser/package-lock.json and installed by `npm ci --prefix tests/browser`) with
# contrib/redocly.yaml's rules, and says what the code does about errors and security: every
# authenticated operation answers 401, every one that changes state takes the CSRF header with
# a cookie and answers 403, every /api/v1 operation 503, every operation 500. The validator is
# also shown to refuse the faults this file once had.
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get('VMB_SOURCE_ROOT') or os.path.dirname(os.path.dirname(HERE))
SPEC = os.path.join(SRC, 'contrib', 'openapi.yaml')
CONFIG = os.path.join(SRC, 'contrib', 'redocly.yaml')
REDOCLY = os.path.join(SRC, 'tests', 'browser', 'node_modules', '@redocly', 'cli', 'bin',
                       'cli.js')
METHODS = ('get', 'put', 'post', 'delete', 'patch')


def lint(spec, config=CONFIG):
    if not os.path.exists(REDOCLY):
        raise AssertionError(f'{REDOCLY} is missing: run npm ci --prefix tests/browser')
    env = dict(os.environ, REDOCLY_TELEMETRY='off', REDOCLY_SUPPRESS_UPDATE_NOTICE='true',
               NO_COLOR='1')
    return subprocess.run(['node', REDOCLY, 'lint', '--config', config, '--format', 'stylish',
                           spec], capture_output=True, text=True, timeout=120, env=env)


def operations(doc):
    for path, item in doc['paths'].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


class OpenApi(unittest.TestCase):
    def setUp(self):
        with open(SPEC, encoding='utf-8') as f:
            self.text = f.read()
        self.doc = yaml.safe_load(self.text)

    def test_redocly_finds_nothing(self):
        r = lint(SPEC)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn('valid', r.stdout + r.stderr)
        self.assertNotRegex(r.stdout + r.stderr, r'\berror\b')

    def lint_variant(self, text):
        d = tempfile.mkdtemp(prefix='vmb-openapi-')
        self.addCleanup(shutil.rmtree, d, True)
        for name in ('redocly.yaml', '.redocly.lint-ignore.yaml'):
            shutil.copy(os.path.join(SRC, 'contrib', name), d)
        with open(os.path.join(d, 'openapi.yaml'), 'w', encoding='utf-8') as f:
            f.write(text)
        return lint(os.path.join(d, 'openapi.yaml'), os.path.join(d, 'redocly.yaml'))

    def test_redocly_refuses_the_faults_this_file_had(self):
        flow = self.text.replace("{description: 'The file, with its MIME type'}",
                                 '{description: The file, with its MIME type}', 1)
        self.assertNotEqual(flow, self.text)
        renamed = self.text.replace('  /api/v1/vms/{id}/stop:\n',
                                    '  /api/v1/vms/{vm}/stop:\n', 1)
        no_401 = re.sub(r"(\n  /api/v1/me:\n(?:    .*\n)*?)        '401': [^\n]*\n", r'\1',
                        self.text, count=1)
        self.assertNotEqual(no_401, self.text)
        for name, text in (('flow mapping with a comma', flow),
                           ('a path parameter not declared', renamed),
                           ('an operation without a 4XX (GET /api/v1/me without 401)', no_401)):
            with self.subTest(name):
                self.assertNotEqual(self.lint_variant(text).returncode, 0, name)

    def test_every_operation_has_its_errors_and_security(self):
        default = self.doc['security']
        schemes = self.doc['components']['securitySchemes']
        self.assertEqual(schemes['sessionSecure']['name'], '__Host-vmb_session')
        self.assertEqual((schemes['csrf']['in'], schemes['csrf']['name']),
                         ('header', 'X-CSRF-Token'))
        count = 0
        for path, method, op in operations(self.doc):
            count += 1
            where = f'{method} {path}'
            codes = set(map(str, op['responses']))
            security = op.get('security', default)
            self.assertIn('operationId', op, where)
            self.assertIn('500', codes, where)
            if path.startswith('/api/v1/'):
                self.assertIn('503', codes, where)
            if not security:
                continue
            self.assertIn('401', codes, where)
            cookies = [req for req in security if 'session' in req or 'sessionSecure' in req]
            self.assertEqual(len(cookies), 2, where)
            self.assertIn({'bearer': []}, security, where)
            if method != 'get':
                self.assertIn('403', codes, where)
                for req in cookies:
                    self.assertIn('csrf', req, f'{where}: a cookie without the CSRF header')
            else:
                for req in cookies:
                    self.assertNotIn('csrf', req, where)
        self.assertGreater(count, 30)


if __name__ == '__main__':
    unittest.main(verbosity=2)
