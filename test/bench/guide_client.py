#!/usr/bin/python3
"""A hotkey client of the guide's design, for the benchmark only.

The first running domain through libvirt's Python bindings, then one socat
run per device, each sending "NAME attach VID:PID" without a newline.

usage: guide_client.py URI SOCKET VID:PID...
"""
import subprocess
import sys

import libvirt

uri, sock, devices = sys.argv[1], sys.argv[2], sys.argv[3:]
conn = libvirt.openReadOnly(uri)
ids = conn.listDomainsID()
if not ids:
    sys.exit('no running domain')
name = conn.lookupByID(ids[0]).name()
for device in devices:
    p = subprocess.Popen(['socat', '-', 'UNIX-CONNECT:' + sock],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.communicate('{} attach {}'.format(name, device).encode())
    if p.returncode != 0:
        sys.exit('socat failed for ' + device)
