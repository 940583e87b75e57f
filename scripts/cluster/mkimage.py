#!/usr/bin/env python3
"""Pack a root filesystem directory into a single-layer OCI image archive.

Used by images.sh: the images are built with debootstrap (no registry can be
reached here), and `ctr images import` takes an OCI archive whose index
carries the image name in the io.containerd.image.name annotation.
The layer is left uncompressed: the archive never leaves this machine and
compressing ~100-200 MB costs more time than it saves.
"""

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterable, Sequence

LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"


class Args(argparse.Namespace):
    """The parsed command line (attributes as set by parse_args)."""

    rootfs: str
    out: str
    name: str
    user: str
    workdir: str
    entrypoint: str
    cmd: str
    env: list[str]
    label: list[str]
    stop_signal: str


def parse_args(argv: Sequence[str]) -> Args:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rootfs", required=True, help="directory to pack as the only layer")
    p.add_argument("--out", required=True, help="OCI archive (.tar) to write")
    p.add_argument("--name", required=True, help="full image reference, e.g. localhost/x/y:1")
    p.add_argument("--user", default="")
    p.add_argument("--workdir", default="")
    p.add_argument("--entrypoint", default="null", help="JSON list or null")
    p.add_argument("--cmd", default="null", help="JSON list or null")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE, repeatable")
    p.add_argument("--label", action="append", default=[], help="KEY=VALUE, repeatable")
    p.add_argument("--stop-signal", default="")
    return p.parse_args(argv, namespace=Args())


def pack_layer(rootfs: str, dest: str) -> tuple[str, int]:
    """Write the layer tar to dest with GNU tar (fast, keeps hard links and
    numeric owners); return (sha256 hex, size)."""
    cmd = [
        "tar",
        "--numeric-owner",
        "--one-file-system",
        "-C",
        rootfs,
        # The runtime mounts its own /dev, /proc and /sys; device nodes that
        # debootstrap made would only be noise in the layer.
        "--exclude=./dev/*",
        "--exclude=./proc/*",
        "--exclude=./sys/*",
        "-cf",
        "-",
        ".",
    ]
    digest = hashlib.sha256()
    size = 0
    with subprocess.Popen(cmd, stdout=subprocess.PIPE) as proc, open(dest, "wb") as out:
        stdout = proc.stdout
        if stdout is None:  # cannot happen with stdout=PIPE
            raise RuntimeError("mkimage: tar was started without a stdout pipe")
        while True:
            chunk = stdout.read(1 << 20)
            if not chunk:
                break
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    if proc.returncode != 0:
        raise SystemExit(f"mkimage: tar of {rootfs} failed with exit code {proc.returncode}")
    return digest.hexdigest(), size


def blob(data: bytes) -> tuple[str, bytes]:
    return hashlib.sha256(data).hexdigest(), data


def kv_list(pairs: Iterable[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"mkimage: --{what} needs KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def build(args: Args) -> None:
    if not os.path.isdir(args.rootfs):
        raise SystemExit(f"mkimage: {args.rootfs} is not a directory")
    repo, _, tag = args.name.rpartition(":")
    if not repo or "/" in tag:
        raise SystemExit(f"mkimage: --name needs an explicit tag, got {args.name!r}")
    env = [f"{k}={v}" for k, v in kv_list(args.env, "env").items()]
    labels = kv_list(args.label, "label")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        layer_path = os.path.join(tmp, "layer.tar")
        layer_digest, layer_size = pack_layer(args.rootfs, layer_path)
        image_config: dict[str, object] = {
            k: v
            for k, v in {
                "User": args.user,
                "WorkingDir": args.workdir,
                "Env": env,
                "Entrypoint": json.loads(args.entrypoint),
                "Cmd": json.loads(args.cmd),
                "Labels": labels,
                "StopSignal": args.stop_signal,
            }.items()
            if v
        }
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        config: dict[str, object] = {
            "created": created,
            "architecture": "amd64",
            "os": "linux",
            "config": image_config,
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
            "history": [{"created": created, "created_by": "scripts/cluster/mkimage.py"}],
        }
        config_digest, config_bytes = blob(json.dumps(config, sort_keys=True).encode())
        manifest: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {
                "mediaType": CONFIG_TYPE,
                "digest": f"sha256:{config_digest}",
                "size": len(config_bytes),
            },
            "layers": [
                {"mediaType": LAYER_TYPE, "digest": f"sha256:{layer_digest}", "size": layer_size}
            ],
        }
        manifest_digest, manifest_bytes = blob(json.dumps(manifest, sort_keys=True).encode())
        index: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": INDEX_TYPE,
            "manifests": [
                {
                    "mediaType": MANIFEST_TYPE,
                    "digest": f"sha256:{manifest_digest}",
                    "size": len(manifest_bytes),
                    "platform": {"architecture": "amd64", "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": args.name,
                        "org.opencontainers.image.ref.name": tag,
                    },
                }
            ],
        }
        tmp_out = os.path.join(tmp, "image.tar")
        with tarfile.open(tmp_out, "w", format=tarfile.PAX_FORMAT) as tar:

            def add_bytes(name: str, data: bytes) -> None:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = int(time.time())
                tar.addfile(info, io.BytesIO(data))

            add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            add_bytes("index.json", json.dumps(index, sort_keys=True).encode())
            add_bytes(f"blobs/sha256/{config_digest}", config_bytes)
            add_bytes(f"blobs/sha256/{manifest_digest}", manifest_bytes)
            tar.add(layer_path, arcname=f"blobs/sha256/{layer_digest}")
        os.replace(tmp_out, args.out)
    print(f"{args.name} sha256:{manifest_digest} layer {layer_size // (1 << 20)} MiB -> {args.out}")


if __name__ == "__main__":
    build(parse_args(sys.argv[1:]))
