# SPDX-License-Identifier: LGPL-2.1-or-later
# Debian's nginx in front of a vmbroker under test, configured from contrib/nginx/vmbroker.conf
# (the file an admin installs) with only its ports, upstream and certificate replaced, and a
# self-signed certificate made with openssl. HTTPS requests can leave from any 127.0.0.0/8
# address, so a test can play several clients that nginx tells apart.
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import time

import harness

NGINX = '/usr/sbin/nginx'
SITE = os.path.join(harness.SRC, 'contrib', 'nginx', 'vmbroker.conf')


def self_signed(workdir):
    """A certificate for 127.0.0.1 and localhost; returns (cert path, key path)."""
    cert, key = os.path.join(workdir, 'tls.pem'), os.path.join(workdir, 'tls.key')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2',
                    '-subj', '/CN=vmbroker test', '-addext',
                    'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def site_config(upstream_port, https_port, http_port, cert, key):
    """contrib/nginx/vmbroker.conf with test ports and certificate; each line it edits must
    be there exactly once, so a change of the shipped file shows here."""
    with open(SITE, encoding='utf-8') as f:
        text = f.read()
    edits = [
        ('server 127.0.0.1:8080;', f'server 127.0.0.1:{upstream_port};'),
        ('listen 443 ssl http2;', f'listen 127.0.0.1:{https_port} ssl http2;'),
        ('listen [::]:443 ssl http2;', ''),
        ('listen 80;', f'listen 127.0.0.1:{http_port};'),
        ('listen [::]:80;', ''),
        ('/etc/ssl/certs/vmbroker.example.org.pem', cert),
        ('/etc/ssl/private/vmbroker.example.org.key', key),
    ]
    for old, new in edits:
        if text.count(old) != 1:
            raise AssertionError(f'{SITE}: expected one "{old}"')
        text = text.replace(old, new)
    return text


class Nginx:
    """A private nginx (its own prefix, logs and temp folders) in front of UPSTREAM_PORT."""

    def __init__(self, test, workdir, upstream_port, proxy_bind=None):
        """PROXY_BIND: the address nginx connects to vmbroker from (so that a client on
        127.0.0.1, such as Chromium, is not the proxy itself)."""
        self.dir = os.path.join(workdir, 'nginx')
        os.makedirs(os.path.join(self.dir, 'tmp'), exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.chmod(os.path.join(self.dir, 'tmp'), 0o777)  # the workers' temp files
        self.cert, key = self_signed(self.dir)
        self.port, self.http_port = harness.free_port(), harness.free_port()
        with open(os.path.join(self.dir, 'site.conf'), 'w', encoding='utf-8') as f:
            f.write(site_config(upstream_port, self.port, self.http_port, self.cert, key))
        tmp = os.path.join(self.dir, 'tmp')
        user = 'user nobody nogroup;\n' if os.geteuid() == 0 else ''
        conf = os.path.join(self.dir, 'nginx.conf')
        with open(conf, 'w', encoding='utf-8') as f:
            f.write(f'{user}worker_processes 1;\ndaemon off;\npid {self.dir}/nginx.pid;\n'
                    f'error_log {self.dir}/error.log info;\n'
                    'events { worker_connections 256; }\n'
                    'http {\n'
                    f'  access_log {self.dir}/access.log;\n'
                    + (f'  proxy_bind {proxy_bind};\n' if proxy_bind else '')
                    + ''.join(f'  {k}_temp_path {tmp}/{k};\n' for k in
                              ('client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi')) +
                    f'  include {self.dir}/site.conf;\n}}\n')
        self.proc = subprocess.Popen([NGINX, '-p', self.dir, '-c', conf, '-e',
                                      os.path.join(self.dir, 'error.log')],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        test.addCleanup(self.stop)
        self.tls = ssl.create_default_context(cafile=self.cert)
        self._wait()

    def _wait(self):
        deadline = time.monotonic() + harness.WAIT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError('nginx exited:\n' + self.error_log())
            try:
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError('nginx did not listen:\n' + self.error_log())

    def error_log(self):
        try:
            with open(os.path.join(self.dir, 'error.log'), encoding='utf-8') as f:
                return f.read()
        except OSError:
            return ''

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def connection(self, client='127.0.0.1', timeout=120):
        """An HTTPS connection to nginx that leaves from the address CLIENT."""
        return http.client.HTTPSConnection('127.0.0.1', self.port, timeout=timeout,
                                           context=self.tls, source_address=(client, 0))

    def request(self, method, path, body=None, headers=None, client='127.0.0.1'):
        """Returns (status, lower-cased headers, body bytes); BODY may be JSON-able."""
        conn = self.connection(client)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                headers = {'Content-Type': 'application/json', **(headers or {})}
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()


def direct(broker, method, path, headers=None, client='127.0.0.1'):
    """A plain HTTP request straight to BROKER, leaving from CLIENT: (status, headers)."""
    conn = http.client.HTTPConnection(broker.host, broker.port, timeout=60,
                                      source_address=(client, 0))
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


def access_addrs(log, path):
    """The addr= of every access-log line of PATH in LOG, in order."""
    return re.findall(r' http \S+ ' + re.escape(path) + r' .* addr=(\S+)', log)
