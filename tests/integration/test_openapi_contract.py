# SPDX-License-Identifier: LGPL-2.1-or-later
# The contract test: every operation of contrib/openapi.yaml is called on the real stack
# (the vmbroker binary, PostgreSQL, libvirtd, one memtest guest), and every answer's status
# must be one the operation documents, its content type the documented one, and its JSON body
# valid against the documented schema. Every authenticated operation is also called without
# credentials and must answer a documented 401. Standard library and Debian's PyYAML only: the
# schema check below covers the part of OpenAPI 3.0 the file uses.
import http.client
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

SPEC = os.path.join(harness.SRC, 'contrib', 'openapi.yaml')
PROBE = os.environ.get('VMB_CONSOLE_PROBE')
PASSWORD = 'correct horse battery'
METHODS = ('get', 'put', 'post', 'delete', 'patch')
FORMATS = {
    'uuid': re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    'date-time': re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$'),
}
TYPES = {'object': dict, 'array': list, 'string': str, 'boolean': bool}


def deref(doc, ref):
    node = doc
    for part in ref.lstrip('#/').split('/'):
        node = node[part.replace('~1', '/').replace('~0', '~')]
    return node


def validate(doc, schema, value, where='$'):
    """The errors of VALUE against SCHEMA (OpenAPI 3.0's subset of JSON Schema)."""
    if '$ref' in schema:
        return validate(doc, deref(doc, schema['$ref']), value, where)
    errors = []
    for sub in schema.get('allOf', []):
        errors += validate(doc, sub, value, where)
    if value is None:
        return errors if schema.get('nullable') or 'type' not in schema else \
            errors + [f'{where}: null where {schema["type"]} is documented']
    t = schema.get('type')
    if t == 'integer':
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif t == 'number':
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif t:
        ok = isinstance(value, TYPES[t])
    else:
        ok = True
    if not ok:
        return errors + [f'{where}: {value!r} is not {t}']
    if 'enum' in schema and value not in schema['enum']:
        errors.append(f'{where}: {value!r} not in {schema["enum"]}')
    if isinstance(value, str):
        fmt = FORMATS.get(schema.get('format'))
        if fmt and not fmt.match(value):
            errors.append(f'{where}: {value!r} is not a {schema["format"]}')
        if 'pattern' in schema and not re.search(schema['pattern'], value):
            errors.append(f'{where}: {value!r} does not match {schema["pattern"]}')
        if len(value) > schema.get('maxLength', len(value)):
            errors.append(f'{where}: longer than {schema["maxLength"]}')
    if isinstance(value, dict):
        for key in schema.get('required', []):
            if key not in value:
                errors.append(f'{where}: {key} is required')
        for key, sub in schema.get('properties', {}).items():
            if key in value:
                errors += validate(doc, sub, value[key], f'{where}.{key}')
    if isinstance(value, list) and 'items' in schema:
        for i, item in enumerate(value):
            errors += validate(doc, schema['items'], item, f'{where}[{i}]')
    return errors


class Contract(harness.TestCase):
    def setUp(self):
        super().setUp()
        with open(SPEC, encoding='utf-8') as f:
            self.doc = yaml.safe_load(f)
        self.ops = {(m, p): op for p, item in self.doc['paths'].items()
                    for m, op in item.items() if m in METHODS}
        self.called = set()
        self.migrate()
        self.tokens = {}
        for name, role in (('alice', 'user'), ('bob', 'user'), ('root', 'admin')):
            r = self.vmb('user', 'add', name, '--role', role, '--password-stdin',
                         input=PASSWORD + '\n')
            self.assertEqual(r.returncode, 0, r.stderr)
            r = self.vmb('token', 'create', name)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.tokens[name] = {'Authorization': 'Bearer ' + r.stdout.strip()}
        cfg = harness.base_config(self.db, self.workdir, libvirt={'stop_timeout_s': '2'},
                                  limits={'max_running_per_user': '1'})
        self.prefix = cfg['libvirt']['name_prefix']
        self.addCleanup(self.remove_domains)
        self.broker = harness.Broker(self, cfg, self.workdir)
        self.origin = f'http://{self.broker.host}:{self.broker.port}'

    def remove_domains(self):
        r = subprocess.run(['virsh', '-c', 'qemu:///system', 'list', '--all', '--name'],
                           capture_output=True, text=True, timeout=60)
        for name in r.stdout.split():
            if name.startswith(self.prefix):
                for args in (('destroy', name), ('undefine', name, '--remove-all-storage')):
                    subprocess.run(['virsh', '-c', 'qemu:///system', *args],
                                   capture_output=True, timeout=60)

    # --- one documented call ---

    def check(self, method, template, status, headers, body):
        """STATUS, HEADERS and BODY are what TEMPLATE's operation documents."""
        op = self.ops[(method, template)]
        where = f'{method.upper()} {template} -> {status}'
        self.called.add((method, template))
        responses = {str(k): v for k, v in op['responses'].items()}
        self.assertIn(str(status), responses, f'{where}: undocumented status; body {body[:300]!r}')
        resp = responses[str(status)]
        if '$ref' in resp:
            resp = deref(self.doc, resp['$ref'])
        content = resp.get('content')
        if not content:
            if status in (204, 101):
                self.assertEqual(body, b'', where)
            return None
        ctype = headers.get('content-type', '').split(';')[0].strip()
        self.assertIn(ctype, content, f'{where}: content type {ctype!r}')
        schema = content[ctype].get('schema', {})
        if not ctype.endswith('json'):
            return body
        value = json.loads(body)
        errors = validate(self.doc, schema, value)
        self.assertEqual(errors, [], f'{where}: {json.dumps(value)[:500]}')
        return value

    def call(self, method, template, who=None, body=None, headers=None, raw=None, **params):
        """Calls TEMPLATE's operation (path parameters from PARAMS, a query in `query`) as WHO
        (a token holder, a cookie dict, or None), checks the answer, returns (status, JSON)."""
        path = template
        for k, v in params.items():
            if k != 'query':
                path = path.replace('{' + k + '}', urllib.parse.quote(str(v), safe='/'))
        if params.get('query'):
            path += '?' + urllib.parse.urlencode(params['query'])
        h = dict(self.tokens[who]) if isinstance(who, str) else dict(who or {})
        h.update(headers or {})
        if raw is not None:
            status, hdrs, data = self.broker.raw_request(method.upper(), path, raw, h)
        else:
            status, hdrs, data = self.broker.request(method.upper(), path, body, headers=h)
        return status, self.check(method, template, status, hdrs, data)

    def expect(self, want, *args, **kwargs):
        status, value = self.call(*args, **kwargs)
        self.assertEqual(status, want, value)
        return value

    # --- the calls ---

    def public_and_sessions(self):
        self.expect(200, 'get', '/healthz')
        status, _ = self.call('get', '/readyz')
        self.assertIn(status, (200, 503))
        self.assertIn(b'vmbroker_', self.expect(200, 'get', '/metrics'))
        self.expect(200, 'get', '/')
        self.expect(200, 'get', '/ui/{path}', path='dashboard.html')
        self.expect(404, 'get', '/ui/{path}', path='no-such-file.html')
        self.expect(200, 'get', '/novnc/{path}', path='vnc.html')
        self.expect(404, 'get', '/novnc/{path}', path='no/such/file.js')

        self.expect(401, 'post', '/api/v1/auth/login',
                    body={'username': 'alice', 'password': 'wrong'})
        self.expect(400, 'post', '/api/v1/auth/login', body={'username': 'alice'})
        self.expect(415, 'post', '/api/v1/auth/login', raw=b'{}',
                    headers={'Content-Type': 'text/plain'})
        status, hdrs, data = self.broker.request(
            'POST', '/api/v1/auth/login', {'username': 'alice', 'password': PASSWORD})
        login = self.check('post', '/api/v1/auth/login', status, hdrs, data)
        self.assertEqual(status, 200)
        cookie = {'Cookie': hdrs['set-cookie'].split(';')[0]}
        me = self.expect(200, 'get', '/api/v1/me', who=cookie)
        self.assertEqual((me['username'], me['auth']), ('alice', 'session'))
        self.expect(403, 'post', '/api/v1/auth/logout', who=cookie)
        self.expect(204, 'post', '/api/v1/auth/logout', who=cookie,
                    headers={'X-CSRF-Token': login['csrf_token'], 'Origin': self.origin})
        self.expect(403, 'post', '/api/v1/auth/signup',
                    body={'username': 'carol', 'password': PASSWORD})

    def users_and_tokens(self):
        users = self.expect(200, 'get', '/api/v1/users', who='root')
        self.expect(403, 'get', '/api/v1/users', who='alice')
        ids = {u['username']: u['id'] for u in users}
        self.expect(204, 'post', '/api/v1/users/{id}/disable', who='root', id=ids['bob'])
        self.expect(204, 'post', '/api/v1/users/{id}/enable', who='root', id=ids['bob'])
        self.expect(409, 'post', '/api/v1/users/{id}/disable', who='root', id=ids['root'])
        self.expect(404, 'post', '/api/v1/users/{id}/enable', who='root',
                    id='00000000-0000-4000-8000-000000000000')
        self.expect(403, 'post', '/api/v1/users/{id}/disable', who='alice', id=ids['bob'])

        made = self.expect(201, 'post', '/api/v1/tokens', who='alice',
                           body={'name': 'contract', 'expires_in': 3600})
        self.expect(400, 'post', '/api/v1/tokens', who='alice', body={'name': ''})
        listed = self.expect(200, 'get', '/api/v1/tokens', who='alice')
        self.assertIn(made['id'], [t['id'] for t in listed])
        self.expect(204, 'delete', '/api/v1/tokens/{id}', who='alice', id=made['id'])
        self.expect(404, 'delete', '/api/v1/tokens/{id}', who='bob', id=made['id'])
        templates = self.expect(200, 'get', '/api/v1/templates', who='alice')
        self.assertIn('memtest', [t['name'] for t in templates])

    def isos(self):
        data = harness.small_iso(self)
        iso = self.expect(201, 'put', '/api/v1/isos/{iso}', who='alice', iso='tiny.iso',
                          raw=data, headers={'Content-Type': 'application/octet-stream'})
        again = self.expect(200, 'put', '/api/v1/isos/{iso}', who='alice', iso='tiny.iso',
                            raw=data, headers={'Content-Type': 'application/octet-stream'})
        self.assertEqual(again['id'], iso['id'])
        self.expect(422, 'put', '/api/v1/isos/{iso}', who='alice', iso='junk.iso',
                    raw=b'\0' * 65536, headers={'Content-Type': 'application/octet-stream'})
        self.assertIn(iso['id'], [i['id'] for i in
                                  self.expect(200, 'get', '/api/v1/isos', who='alice')])
        self.expect(204, 'delete', '/api/v1/isos/{iso}', who='alice', iso=iso['id'])
        self.expect(404, 'delete', '/api/v1/isos/{iso}', who='alice', iso=iso['id'])

    def wait_state(self, vm_id, state):
        deadline = time.monotonic() + harness.WAIT_S
        while True:
            vm = self.expect(200, 'get', '/api/v1/vms/{id}', who='alice', id=vm_id)
            if vm['state'] == state or time.monotonic() > deadline:
                self.assertEqual(vm['state'], state)
                return vm
            time.sleep(0.3)

    def vms(self):
        self.expect(422, 'post', '/api/v1/vms', who='alice', body={'template': 'no-such'})
        self.expect(400, 'post', '/api/v1/vms', who='alice', body={'template': 5})
        self.expect(403, 'post', '/api/v1/vms', who='alice',
                    body={'template': 'memtest', 'owner': 'bob'})
        made = self.expect(201, 'post', '/api/v1/vms', who='alice', body={'template': 'memtest'})
        vm_id = made['vm']['id']
        self.addCleanup(self.broker.request, 'DELETE', f'/api/v1/vms/{vm_id}',
                        headers=self.tokens['alice'])
        limit = self.expect(409, 'post', '/api/v1/vms', who='alice',
                            body={'template': 'memtest'})
        self.assertEqual([v['id'] for v in limit['running']], [vm_id])
        self.assertEqual(len(self.expect(200, 'get', '/api/v1/vms', who='root',
                                         query={'owner': 'alice'})), 1)
        self.expect(404, 'get', '/api/v1/vms/{id}', who='bob', id=vm_id)

        tickets = self.expect(201, 'post', '/api/v1/vms/{id}/console', who='alice', id=vm_id)
        page = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(
            tickets['console_url']).fragment))['ticket']
        session = self.expect(200, 'post', '/api/v1/vms/{id}/console/session', id=vm_id,
                              body={'ticket': page})
        self.expect(401, 'post', '/api/v1/vms/{id}/console/session', id=vm_id,
                    body={'ticket': page})
        probe = subprocess.run([PROBE, self.broker.host, str(self.broker.port),
                                session['ws_path'], self.origin], capture_output=True,
                               text=True, timeout=120)
        self.assertEqual(probe.returncode, 0, probe.stderr)
        self.check('get', '/api/v1/vms/{id}/console/ws', json.loads(probe.stdout)['status'],
                   {}, b'')
        self.expect(400, 'get', '/api/v1/vms/{id}/console/ws', id=vm_id,
                    query={'ticket': 'not-a-ticket'}, headers={'Origin': self.origin})  # no Upgrade

        self.assertEqual(self.expect(200, 'get', '/api/v1/vms/{id}/snapshots', who='alice',
                                     id=vm_id), [])
        self.expect(404, 'get', '/api/v1/vms/{id}/snapshots', who='bob', id=vm_id)
        self.expect(409, 'post', '/api/v1/vms/{id}/snapshots', who='alice', id=vm_id,
                    body={})  # memtest has no disk (test_snapshots takes real ones)
        self.expect(400, 'post', '/api/v1/vms/{id}/snapshots', who='alice', id=vm_id,
                    body={'name': 'Not A Name'})
        self.expect(404, 'post', '/api/v1/vms/{id}/snapshots/{sid}/revert', who='alice',
                    id=vm_id, sid='none')
        self.expect(404, 'delete', '/api/v1/vms/{id}/snapshots/{sid}', who='alice', id=vm_id,
                    sid='none')

        lab = {'kind': 'iso', 'memory_mib': 256, 'vcpus': 1, 'video': 'vga', 'network': 'none',
               'boot': ['cdrom']}
        self.expect(403, 'post', '/api/v1/templates', who='alice', body={'name': 'lab', **lab})
        self.expect(422, 'post', '/api/v1/templates', who='root',
                    body={'name': 'lab', **lab, 'vcpus': 0})
        self.assertEqual(self.expect(201, 'post', '/api/v1/templates', who='root',
                                     body={'name': 'lab', **lab})['source'], 'api')
        self.expect(409, 'post', '/api/v1/templates', who='root', body={'name': 'lab', **lab})
        self.expect(200, 'put', '/api/v1/templates/{name}', who='root', name='lab', body=lab)
        self.expect(404, 'put', '/api/v1/templates/{name}', who='root', name='none', body=lab)
        self.expect(409, 'delete', '/api/v1/templates/{name}', who='root', name='memtest')
        self.expect(204, 'delete', '/api/v1/templates/{name}', who='root', name='lab')
        self.assertEqual(self.expect(200, 'get', '/api/v1/images', who='root'), [])
        self.expect(403, 'get', '/api/v1/images', who='alice')
        self.expect(403, 'put', '/api/v1/images/{name}', who='alice', name='x.qcow2',
                    raw=b'x', headers={'Content-Type': 'application/octet-stream'})
        self.expect(422, 'put', '/api/v1/images/{name}', who='root', name='x.qcow2',
                    raw=b'\0' * 4096, headers={'Content-Type': 'application/octet-stream'})
        self.expect(404, 'delete', '/api/v1/images/{name}', who='root', name='x.qcow2')
        self.assertEqual(self.expect(200, 'get', '/api/v1/disks', who='alice'), [])
        self.expect(404, 'delete', '/api/v1/disks/{id}', who='alice', id='memtest@alice')
        self.expect(404, 'post', '/api/v1/disks/{id}/reset', who='alice', id='memtest@alice')

        self.expect(202, 'post', '/api/v1/vms/{id}/stop', who='alice', id=vm_id)
        self.wait_state(vm_id, 'stopped')
        self.expect(409, 'post', '/api/v1/vms/{id}/stop', who='alice', id=vm_id)
        self.expect(409, 'post', '/api/v1/vms/{id}/reboot', who='alice', id=vm_id)
        self.expect(409, 'post', '/api/v1/vms/{id}/console', who='alice', id=vm_id)
        self.expect(200, 'post', '/api/v1/vms/{id}/start', who='alice', id=vm_id)
        self.expect(409, 'post', '/api/v1/vms/{id}/start', who='alice', id=vm_id)
        self.expect(202, 'post', '/api/v1/vms/{id}/reboot', who='alice', id=vm_id)
        ops = self.expect(200, 'get', '/api/v1/vms/{id}/operations', who='alice', id=vm_id)
        self.assertEqual(ops[0]['kind'], 'reboot')
        conns = self.expect(200, 'get', '/api/v1/vms/{id}/connections', who='alice', id=vm_id)
        self.assertEqual([(c['user'], c['remote_addr']) for c in conns], [('alice', '127.0.0.1')])
        self.assertIsNotNone(conns[0]['closed_at'])
        self.expect(404, 'get', '/api/v1/vms/{id}/connections', who='bob', id=vm_id)
        self.expect(200, 'get', '/api/v1/operations/{id}', who='alice', id=ops[0]['id'])
        self.expect(404, 'get', '/api/v1/operations/{id}', who='bob', id=ops[0]['id'])
        self.expect(404, 'get', '/api/v1/vms/{id}/operations', who='bob', id=vm_id)
        self.expect(404, 'delete', '/api/v1/vms/{id}', who='bob', id=vm_id)
        self.expect(204, 'delete', '/api/v1/vms/{id}', who='alice', id=vm_id)
        return vm_id

    def events(self):
        """The event stream never ends: its status and headers are checked, then it is closed."""
        conn = http.client.HTTPConnection(self.broker.host, self.broker.port, timeout=30)
        try:
            conn.request('GET', '/api/v1/events', headers=self.tokens['alice'])
            r = conn.getresponse()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            self.check('get', '/api/v1/events', r.status, hdrs, b'')
            self.assertEqual(r.status, 200)
        finally:
            conn.close()

    def audit(self, vm_id):
        page = self.expect(200, 'get', '/api/v1/audit', who='root', query={'vm': vm_id})
        self.assertEqual(page['items'][0]['action'], 'vm.delete')
        isos = self.expect(200, 'get', '/api/v1/audit', who='root', query={'action': 'iso.'})
        self.assertEqual([(r['action'], r['actor'], r['remote_addr']) for r in isos['items']],
                         [('iso.delete', 'alice', '127.0.0.1'), ('iso.upload', 'alice', '127.0.0.1')])
        self.assertEqual(isos['items'][1]['detail']['name'], 'tiny.iso')
        self.expect(403, 'get', '/api/v1/audit', who='alice')
        self.expect(400, 'get', '/api/v1/audit', who='root', query={'since': 'soon'})

    def test_every_documented_operation_answers_as_documented(self):
        self.public_and_sessions()
        self.users_and_tokens()
        self.isos()
        self.events()
        vm_id = self.vms()
        self.audit(vm_id)
        # Without credentials, every authenticated operation is a documented 401.
        default = self.doc['security']
        for (method, template), op in sorted(self.ops.items()):
            if not op.get('security', default):
                continue
            with self.subTest(op=f'{method} {template}'):
                params = {k: '00000000-0000-4000-8000-000000000000'
                          for k in re.findall(r'\{(\w+)\}', template)}
                body = None if method in ('get', 'delete') else {}
                self.expect(401, method, template, body=body, **params)
        missing = sorted(set(self.ops) - self.called)
        self.assertEqual(missing, [], 'documented operations never called')


if __name__ == '__main__':
    harness.main()
