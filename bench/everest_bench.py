"""
EVerest module bench: command round trips through a real Mosquitto.

Starts a Mosquitto of its own (127.0.0.1, a free port), the module as
EVerest's manager starts it (``python -m evsev2g.everest`` with the ``EV_*``
environment, ``device: lo``), and a minimal manager and EvseManager on
plain paho; then sends ``update_dc_present_values`` (what EvseManager sends
at every power-supply reading during CurrentDemand) one after another and
in bursts, and prints:

- the round trip call → result: count, p50, p99, max (ms);
- the module's CPU time per command (user + system from /proc);
- the module's resident memory after the run (VmRSS, VmHWM).

Target: p99 ≤ 25 ms one after another (EvseManager's present values must
reach the next CurrentDemandRes, V2G_SECC_CurrentDemand_Performance_Time).
It prints PASS/MISS; it is a measurement, exit status 0 unless something broke.

Usage: python bench/everest_bench.py [--calls 500] [--burst 50]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho

REPO = Path(__file__).resolve().parents[1]
DUT = "iso15118_charger"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_figures(pid: int) -> tuple[float, int, int]:
    """CPU seconds (user + system), VmRSS and VmHWM in kB."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return cpu, int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--burst", type=int, default=50)
    parser.add_argument("--broker-nagle", action="store_true",
                        help="leave mosquitto's set_tcp_nodelay at its default (false), as many installations do")
    options = parser.parse_args()
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    work = Path(tempfile.mkdtemp(prefix="everest-bench-"))
    port = free_port()
    conf = work / "mosquitto.conf"
    nodelay = "false" if options.broker_nagle else "true"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay {nodelay}\n" + ("user root\n" if os.geteuid() == 0 else ""))
    broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    prefix = f"bench_{uuid.uuid4().hex[:6]}/"
    results: dict[str, float] = {}
    state = {"ready": False}

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)

    def on_message(c, userdata, message):
        data = json.loads(message.payload)
        if message.topic == prefix + "config/request":
            params = [{"name": k, "value": v} for k, v in
                      {"device": "lo", "tcp_port": 0, "tls_port": 0, "sdp_port": 0, "tls_security": "prohibit"}.items()]
            response = {"status": "Ok", "type": "Get", "response": {"type": "Module", "data": {"module_config": {
                "module_id": DUT, "configuration_parameters": {"!module": params}, "connections": {}}}}}
            c.publish(f"{prefix}modules/{DUT}/response", json.dumps({"msg_type": "ConfigurationResponse", "data": response}), qos=2)
        elif message.topic.endswith("/ready"):
            state["ready"] = True
            c.publish(prefix + "ready", json.dumps({"msg_type": "GlobalReady", "data": True}), qos=2)
        elif "/response/" in message.topic:
            results[data["data"]["data"]["id"]] = time.perf_counter()

    client.on_message = on_message
    for _ in range(50):
        try:
            client.connect("127.0.0.1", port)
            break
        except OSError:
            time.sleep(0.1)
    # the bench's own client without Nagle too (paho does not set TCP_NODELAY)
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for topic in (prefix + "config/request", f"{prefix}modules/{DUT}/ready", f"{prefix}modules/{DUT}/impl/charger/cmd/+/response/evse_manager"):
        client.subscribe(topic, 2)
    env = dict(os.environ, EV_MODULE=DUT, EV_MQTT_EVEREST_PREFIX=prefix, EV_MQTT_BROKER_HOST="127.0.0.1",
               EV_MQTT_BROKER_PORT=str(port), PYTHONPATH=str(REPO), EVSEV2G_LOG_LEVEL="warn")
    module = subprocess.Popen([sys.executable, "-m", "evsev2g.everest"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not state["ready"] and time.monotonic() < deadline:
            client.loop(0.05)
        if not state["ready"]:
            print("the module did not become ready", file=sys.stderr)
            return 1
        client.loop(0.5)

        def call() -> tuple[str, float]:
            call_id = str(uuid.uuid4())
            args = {"present_voltage_current": {"evse_present_voltage": 400.0, "evse_present_current": 100.0}}
            sent = time.perf_counter()
            client.publish(f"{prefix}modules/{DUT}/impl/charger/cmd/update_dc_present_values",
                           json.dumps({"msg_type": "Cmd", "data": {"id": call_id, "args": args, "origin": "evse_manager"}}), qos=2)
            return call_id, sent

        def wait(ids):
            end = time.monotonic() + 30
            while not all(i in results for i in ids) and time.monotonic() < end:
                client.loop(0.001)

        cpu0, _, _ = proc_figures(module.pid)
        sequential = []
        for _ in range(options.calls):
            call_id, sent = call()
            wait([call_id])
            sequential.append((results[call_id] - sent) * 1000)
        bursts = []
        for _ in range(max(1, options.calls // options.burst)):
            pending = [call() for _ in range(options.burst)]
            wait([i for i, _ in pending])
            missing = [i for i, _ in pending if i not in results]
            if missing:
                print(f"{len(missing)} of {len(pending)} results missing", file=sys.stderr)
                return 1
            bursts += [(results[i] - sent) * 1000 for i, sent in pending]
        cpu1, rss, hwm = proc_figures(module.pid)
        total = len(sequential) + len(bursts)
        for label, values in (("one after another", sequential), (f"bursts of {options.burst}", bursts)):
            values.sort()
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
            print(f"{label:>20}: n={len(values)} p50={statistics.median(values):.2f} ms p99={p99:.2f} ms max={values[-1]:.2f} ms")
        p99_seq = sorted(sequential)[min(len(sequential) - 1, int(len(sequential) * 0.99))]
        print(f"module CPU per command: {(cpu1 - cpu0) / total * 1e6:.0f} µs; RSS {rss / 1024:.1f} MB (peak {hwm / 1024:.1f} MB)")
        print(f"target p99 ≤ 25 ms one after another: {'PASS' if p99_seq <= 25 else 'MISS'}")
        return 0
    finally:
        module.terminate()
        module.wait(15)
        client.disconnect()
        broker.terminate()
        broker.wait(10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
