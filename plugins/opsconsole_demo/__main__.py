"""Run the demo platform alone: `python -m opsconsole_demo [--size N] [--version 4.0] [--sim-media]`;
`--nodes N`: N nodes (opsconsole_demo.fleet), printed as the [[targets]] of a config file."""

from __future__ import annotations

import argparse
import asyncio
import json
import contextlib
import signal

from . import DemoPlatform


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="python -m opsconsole_demo", description=__doc__)
    parser.add_argument("--size", type=int, default=70, help="number of registered contacts (default 70)")
    parser.add_argument("--version", choices=("3.4", "4.0"), default="3.4", help="OpenSIPS version to imitate")
    parser.add_argument("--sim-media", action="store_true", help="simulate RTPengine even if it is installed")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tick", type=float, default=1.0, help="seconds between simulation steps")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiplier for the emulated ul_dump cost")
    parser.add_argument("--sip", action="store_true", help="also run a SIP registrar (UDP+TCP; REGISTER/OPTIONS) on loopback")
    parser.add_argument("--no-rtp", action="store_true", help="send no RTP through the real rtpengine (see demo/rtp.py)")
    parser.add_argument("--json", action="store_true", help="print the addresses as one JSON line (for scripts, bench/)")
    parser.add_argument("--nodes", type=_nodes, default=None,
                        help="run N nodes and print them as [[targets]] for `opsconsole --config FILE`")
    return parser.parse_args(argv)


def _nodes(text: str) -> int:
    from .fleet import MAX_NODES

    if not text.isdigit() or not 1 <= int(text) <= MAX_NODES:
        raise argparse.ArgumentTypeError(f"a number of nodes from 1 to {MAX_NODES}, got {text!r}")
    return int(text)


async def serve_nodes(args: argparse.Namespace) -> None:
    from .fleet import DemoFleet

    async with DemoFleet(args.nodes, size=args.size, version=args.version,
                         real_rtpengine=False if args.sim_media else None, seed=args.seed, tick=args.tick) as fleet:
        for spec in fleet.targets():
            labels = ", ".join(f'{key} = "{value}"' for key, value in spec.labels.items())
            print(f'[[targets]]\nname = "{spec.name}"\nmi_url = "{spec.mi_url}"\nng = {json.dumps(list(spec.ng))}\n'
                  f'cli = {json.dumps(list(spec.cli))}\nlabels = {{ {labels} }}\n', flush=True)
        print("# save the above as fleet.toml, then: opsconsole --config fleet.toml (key 0: the Fleet screen)."
              " Ctrl-C stops everything.", flush=True)
        await _until_stopped()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGHUP):  # stop cleanly, the daemon included
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def serve(args: argparse.Namespace) -> None:
    async with DemoPlatform(size=args.size, version=args.version, real_rtpengine=False if args.sim_media else None,
                            seed=args.seed, tick=args.tick, time_scale=args.time_scale, sip=args.sip,
                            rtp=not args.no_rtp) as demo:
        media = "real rtpengine" if demo.media.real else "simulated rtpengine"
        if args.json:
            print(json.dumps({"mi_url": demo.mi_url, "ng": list(demo.ng), "cli": list(demo.cli), "media": media,
                              "sip": list(demo.sip) if demo.sip else None,
                              "sip_tcp": list(demo.sip_tcp) if demo.sip_tcp else None}), flush=True)
        print(f"OpenSIPS {args.version} MI: {demo.mi_url}", flush=True)
        print(f"RTPengine ng: {demo.ng[0]}:{demo.ng[1]}  cli: {demo.cli[0]}:{demo.cli[1]}  ({media})", flush=True)
        print(f"try: opsconsole snapshot --mi-url {demo.mi_url} --ng {demo.ng[0]}:{demo.ng[1]}"
              f" --cli {demo.cli[0]}:{demo.cli[1]}", flush=True)
        if demo.sip:
            print(f"SIP registrar: udp:{demo.sip[0]}:{demo.sip[1]}  tcp:{demo.sip_tcp[0]}:{demo.sip_tcp[1]}"
                  "  (REGISTER, OPTIONS)", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        await _until_stopped()


def main(argv=None) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        args = parse_args(argv)
        asyncio.run(serve_nodes(args) if args.nodes else serve(args))


if __name__ == "__main__":
    main()
