#!/usr/bin/python3
"""A usbserver of the guide's design, for the benchmark only.

A thread per connection (socketserver's ThreadingMixIn on a Unix stream
socket), one subprocess.call of virsh per line, and each device's XML file
written once and then reused. Prints "ready" once it listens.

usage: guide_server.py SOCKET XML_DIR
"""
import os
import socketserver
import subprocess
import sys
from syslog import syslog

SOCKET, XML_DIR = sys.argv[1], sys.argv[2]
HOSTDEV = ("<hostdev mode='subsystem' type='usb'><source>"
           "<vendor id='0x{}'/><product id='0x{}'/></source></hostdev>\n")


def run_virsh(vm, action, device):
    path = os.path.join(XML_DIR, 'device-{}.xml'.format(device))
    if not os.path.exists(path):
        with open(path, 'w') as f:
            f.write(HOSTDEV.format(*device.split(':')))
    return subprocess.call(['virsh', action + '-device', vm, path]) == 0


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        for raw in self.rfile:
            line = raw.strip().decode('utf-8', 'replace')
            words = line.split(' ')
            if (len(words) != 3 or words[1] not in ('attach', 'detach')
                    or ':' not in words[2]):
                syslog('[VMusb] invalid action: ' + line)
            elif run_virsh(*words):
                syslog('[VMusb] {} {}ed device {}'.format(*words))
            else:
                syslog('[VMusb] {} {}ing device {} failed'.format(*words))


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


server = Server(SOCKET, Handler)
print('ready', flush=True)
server.serve_forever()
