"""The HAProxy tier behind ``<name>-service`` that always routes to the current master.

A server receives connections only while it answers ``role:master`` *and* either a majority of
the Sentinels name it master, or they name a server that has become its replica (a planned
hand-over, before the Sentinels see the promotion); anything else is refused, so a plain client
is never routed to a replica, nor to an old master cut off from the Sentinels. Sessions to a
server that stops being master are shut down, so clients reconnect to the new one instead of
meeting READONLY.
"""

from __future__ import annotations

from .metrics import METRICS_PATH, PROXY_METRICS_PORT
from .naming import (
    PROXY_HEALTH_PORT,
    REDIS_PORT,
    Names,
    common_labels,
    image_version,
    selector_labels,
)
from .pod_constants import PROXY_UP_CHECK_SECONDS, peer_sentinel_port
from .settings import RedisSettings
from .tls import REDIS_TLS_PORT
from .workload import (
    PASSWORD_KEY,
    PREVIOUS_PASSWORD_KEY,
    Json,
    affinity,
    container_ports,
    pod_security,
    restricted_container_security,
    secret_env,
)

PROXY_UID = 99
PROXY_START = (
    'export REDIS_PASSWORD="${REDIS_PREVIOUS_PASSWORD:-$REDIS_PASSWORD}"; '
    "exec haproxy -db -f /config/haproxy.cfg"
)
"""The proxy's checks authenticate as the application user, the credential its clients hold, so
a server that would refuse them is never routed to; with the previous password while there is
one: every pod accepts it, those still on the old spec during a rotation and the new ones alike,
so the checks keep passing while the proxy and the Redis pods roll in any order. A revocation
removes it from the Secret and rolls the proxy before any server refuses it."""
IN_SYNC_LAG_SECONDS = 2
"""A replica acknowledges the replication stream every second; one silent for longer than this
no longer vouches for its master."""
SERVER_DEFAULTS = (
    f"check inter {PROXY_UP_CHECK_SECONDS}s downinter 250ms fall 1 rise 1"
    " resolvers cluster init-addr none init-state down"
)
"""React to one check result and resolve pod names through cluster DNS. Servers that are down
(replicas, Sentinels naming another master) are checked four times a second, so a promoted
replica takes connections within a quarter second of passing its checks (a quorum naming it and
a replica in sync); servers that are up are checked every second, as each extra check of a
loaded pod is one more chance to flap.

``init-state down``: a server is down until a check passes, when the proxy starts and when its
pod name resolves again after a restarted pod was missing from DNS. Without it, HAProxy counts
such a server up until its first check ends, in every backend at once: a replica that came
back then passed the master check, the follower checks and, as its Sentinel, the agreement
checks, and new connections went to it (READONLY)."""


PROXY_CA_MOUNT = "/tls-ca"
"""The CA bundle (``ca.crt`` of the server certificate Secret) the proxy's checks verify with;
the proxy never mounts the servers' key."""
PROXY_CLIENT_CERT_MOUNT = "/tls-client"
"""With client certificates: the client certificate the checks present (``client.crt`` and
``client.crt.key``, which HAProxy loads beside it)."""
CHECKED_BACKEND = "redis_master"
"""The backend whose servers run the master checks; a second backend (the other of plain and
TLS in the transition mode) tracks them."""

TRACKING_SERVER_DEFAULTS = "resolvers cluster init-addr none"
"""Servers that track a checked one run no check of their own, but resolve like it."""


def _agreement_backend(ordinal: int) -> str:
    return f"sentinels_agree_on_{ordinal}"


def _follower_backend(ordinal: int) -> str:
    return f"replica_{ordinal}_online"


def _routes(replicas: int, quorum: int) -> list[tuple[int, str]]:
    """``(ordinal, ACL condition)`` of every rule that routes to a server, in the order HAProxy
    tries them (a rule a line, as it reads at most 64 words a line). A server is routed to while
    it is up as master and ``quorum`` Sentinels name it, or name another server that is now its
    replica in sync.

    The second case is a planned hand-over: ``FAILOVER TO`` makes the old master a replica of
    the new one at once, but the Sentinels see the promotion only at their next ``INFO`` of the
    new master, a second later. An old master becomes a replica of the server it hands over to
    (or of one the Sentinels already elected), never of a server cut off from them, and a
    replica follows one master. Those rules come first: the old master may still pass the
    other on its last check (servers that are up are checked once a second), though it has
    closed its port."""

    def up(ordinal: int) -> str:
        return f"{{ srv_is_up({CHECKED_BACKEND}/redis-{ordinal}) }}"

    def named(ordinal: int) -> str:
        return f"{{ nbsrv({_agreement_backend(ordinal)}) ge {quorum} }}"

    def follows(replica: int, master: int) -> str:
        return f"{{ srv_is_up({_follower_backend(replica)}/redis-{master}) }}"

    ordinals = range(replicas)
    handed_over = [
        (ordinal, f"{up(ordinal)} {named(old)} {follows(old, ordinal)}")
        for ordinal in ordinals
        for old in ordinals
        if old != ordinal
    ]
    return handed_over + [(ordinal, f"{up(ordinal)} {named(ordinal)}") for ordinal in ordinals]


def check_tls_options(settings: RedisSettings) -> str:
    """Server options that make the checks speak TLS, when the pods' links do."""
    if not settings.tls.internal:
        return ""
    options = f" check-ssl verify required ca-file {PROXY_CA_MOUNT}/ca.crt"
    if settings.tls.client_certificates:
        options += f" crt {PROXY_CLIENT_CERT_MOUNT}/client.crt"
    return options


def _client_ports(settings: RedisSettings) -> list[tuple[str, int]]:
    """(kind, port) of every client entry point, on the proxy and on the servers alike, the
    checked one first: plain unless TLS-only (the port the pods' own links use), and TLS
    passed through to the servers' TLS port with TLS on."""
    plain = ("plain", REDIS_PORT)
    tls = ("tls", REDIS_TLS_PORT)
    if not settings.tls.enabled:
        return [plain]
    if settings.tls.plaintext:
        return [plain, tls]
    return [tls]


def _named_reply_length(host: str) -> int:
    """Bytes of a ``GET-MASTER-ADDR-BY-NAME`` reply up to the end of ``host``, its first item."""
    return len(f"*2\r\n${len(host)}\r\n{host}")


def master_expectation(settings: RedisSettings) -> str:
    """What ``INFO replication`` must show for a server to take connections: master, and, when
    writes need replicas, enough of them in sync, one of which acknowledged the replication
    stream at most :data:`IN_SYNC_LAG_SECONDS` ago. A master cut off from its replicas thus
    goes down here within a few seconds, before it would refuse writes itself
    (``min-replicas-max-lag``): its sessions are shut down and clients move to the master the
    Sentinels elect instead of writing where no replica receives their data."""
    if settings.min_replicas_to_write == 0:
        return "string role:master"
    good = "|".join(str(n) for n in range(settings.min_replicas_to_write, settings.replicas))
    lag = min(IN_SYNC_LAG_SECONDS, settings.min_replicas_max_lag_seconds)
    return (
        "rstring (?s)role:master[^a-z]+connected_slaves:[0-9]+[^a-z]+"
        f"min_slaves_good_slaves:({good})[^0-9].*state=online,offset=[0-9]+,lag=[0-{lag}][^0-9]"
    )


def _replication_check(connect: str, expectation: str) -> list[str]:
    """A check that authenticates, reads ``INFO replication`` and matches ``expectation``."""
    return [
        "    option tcp-check",
        connect,
        '    tcp-check send "AUTH ${REDIS_PASSWORD}\\r\\n"',
        "    tcp-check expect string +OK",
        # QUIT in the same send: Redis closes the connection after the reply, so a reply that
        # does not match fails the check at once instead of after the check timeout.
        '    tcp-check send "INFO replication\\r\\nQUIT\\r\\n"',
        f"    tcp-check expect {expectation}",
    ]


def follower_expectation(replica_host: str) -> str:
    """What ``INFO replication`` must show for a server to count as the master that
    ``replica_host`` follows: master, with that replica online (replicas announce their pod
    host name)."""
    host = replica_host.replace(".", "[.]")
    return f"rstring (?s)role:master[^a-z].*slave[0-9]+:ip={host},port=[0-9]+,state=online,"


def render_haproxy_cfg(settings: RedisSettings, names: Names) -> str:
    """haproxy.cfg; the password is read from ``REDIS_PASSWORD`` in the proxy's environment."""
    ordinals = range(settings.replicas)
    master_set = settings.master_set_name
    quorum = settings.sentinel_quorum
    server_routes = _routes(settings.replicas, quorum)
    out: list[str] = [
        "global",
        "    log stdout format raw local0 notice",
        # Each connection needs two descriptors; stay under a 20000 open-files hard limit.
        "    maxconn 4000",
        "    nbthread 1",
        "",
        "defaults",
        "    mode tcp",
        "    log global",
        "    option dontlognull",
        "    timeout connect 2s",
        # A refused connection is closed at once, so its client reconnects and the routing
        # rules choose again; HAProxy's default, 3 retries to the same server 1 s apart, held a
        # client 3 s on an old master whose port its hand-over closed.
        "    retries 0",
        # Generous: a loaded node answers late, and a timed-out check flaps the routing.
        "    timeout check 2s",
        # Application connections idle for long stretches (pub/sub, pooled connections).
        "    timeout client 24h",
        "    timeout server 24h",
        "",
        "resolvers cluster",
        "    parse-resolv-conf",
        "    resolve_retries 3",
        "    timeout resolve 1s",
        "    timeout retry 1s",
        "    hold valid 1s",
        "    hold other 1s",
        "    hold refused 1s",
        "    hold nx 1s",
        "    hold timeout 1s",
        "    hold obsolete 1s",
        "",
        "frontend health",
        "    mode http",
        f"    bind :{PROXY_HEALTH_PORT}",
        "    http-request return status 200 content-type text/plain string ok if { path /healthz }",
        "",
    ]
    if settings.metrics.enabled:
        out += [
            "frontend metrics",
            "    mode http",
            f"    bind :{PROXY_METRICS_PORT}",
            "    option dontlog-normal",
            f"    http-request use-service prometheus-exporter if {{ path {METRICS_PATH} }}",
            "    http-request return status 404",
            "",
        ]
    entry_points = _client_ports(settings)
    backends = [CHECKED_BACKEND] + [f"{CHECKED_BACKEND}_{kind}" for kind, _ in entry_points[1:]]
    for (kind, port), backend in zip(entry_points, backends, strict=True):
        out += [
            f"frontend {'redis' if kind == 'plain' else 'redis_tls'}",
            f"    bind :{port}",
            *(f"    tcp-request connection accept if {route}" for _, route in server_routes),
            "    tcp-request connection reject",
            f"    default_backend {backend}",
            "",
        ]
    checked_port = entry_points[0][1]
    check_options = check_tls_options(settings)
    # "default": the connect takes the server line's check options, check-ssl among them.
    connect = "    tcp-check connect default" if settings.tls.internal else "    tcp-check connect"
    out += [
        f"backend {CHECKED_BACKEND}",
        *_replication_check(connect, master_expectation(settings)),
        f"    default-server {SERVER_DEFAULTS}{check_options} on-marked-down shutdown-sessions",
    ]
    out += [f"    use-server redis-{i} if {route}" for i, route in server_routes]
    out += [f"    server redis-{i} {names.pod_host(i)}:{checked_port}" for i in ordinals]
    for (_, port), backend in zip(entry_points[1:], backends[1:], strict=True):
        out += [
            "",
            f"backend {backend}",
            # Resolved like the checked servers: a rolled pod comes back with a new address.
            f"    default-server {TRACKING_SERVER_DEFAULTS} on-marked-down shutdown-sessions",
        ]
        out += [f"    use-server redis-{i} if {route}" for i, route in server_routes]
        out += [
            f"    server redis-{i} {names.pod_host(i)}:{port} track {CHECKED_BACKEND}/redis-{i}"
            for i in ordinals
        ]
    for i in ordinals:
        out += [
            "",
            f"backend {_follower_backend(i)}",
            *_replication_check(connect, follower_expectation(names.pod_host(i))),
            f"    default-server {SERVER_DEFAULTS}{check_options}",
        ]
        out += [
            f"    server redis-{j} {names.pod_host(j)}:{checked_port}" for j in ordinals if j != i
        ]
    sentinel_port = peer_sentinel_port(settings.tls)
    for i in ordinals:
        out += [
            "",
            f"backend {_agreement_backend(i)}",
            "    option tcp-check",
            connect,
            '    tcp-check send "AUTH ${REDIS_PASSWORD}\\r\\n"',
            "    tcp-check expect string +OK",
            f'    tcp-check send "SENTINEL GET-MASTER-ADDR-BY-NAME {master_set}\\r\\n"',
            # Sentinel 7.0 knows no QUIT and keeps the connection open: min-recv makes a reply
            # that names another master conclusive once it is long enough to hold this name.
            f"    tcp-check expect min-recv {_named_reply_length(names.pod_host(i))} "
            f"string {names.pod_host(i)}",
            f"    default-server {SERVER_DEFAULTS}{check_tls_options(settings)}",
        ]
        out += [f"    server sentinel-{j} {names.pod_host(j)}:{sentinel_port}" for j in ordinals]
    return "\n".join(out) + "\n"


def proxy_tls_mounts(settings: RedisSettings) -> list[Json]:
    """The CA, and the client certificate with client certificates, when the checks use TLS."""
    if not settings.tls.internal:
        return []
    mounts = [{"name": "tls-ca", "mountPath": PROXY_CA_MOUNT, "readOnly": True}]
    if settings.tls.client_certificates:
        mounts.append(
            {"name": "tls-client", "mountPath": PROXY_CLIENT_CERT_MOUNT, "readOnly": True}
        )
    return mounts


def proxy_tls_volumes(settings: RedisSettings, names: Names) -> list[Json]:
    """Volumes of :func:`proxy_tls_mounts`: only ``ca.crt`` of the server certificate Secret."""
    if not settings.tls.internal:
        return []
    volumes: list[Json] = [
        {
            "name": "tls-ca",
            "secret": {
                "secretName": names.tls_secret,
                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                "defaultMode": 0o440,
            },
        }
    ]
    if settings.tls.client_certificates:
        volumes.append(
            {
                "name": "tls-client",
                "secret": {
                    "secretName": names.client_tls_secret,
                    "items": [
                        {"key": "tls.crt", "path": "client.crt"},
                        {"key": "tls.key", "path": "client.crt.key"},
                    ],
                    "defaultMode": 0o440,
                },
            }
        )
    return volumes


def deployment_spec(settings: RedisSettings, names: Names, annotations: dict[str, str]) -> Json:
    """The HAProxy Deployment spec; ``annotations`` go on the pod template (config checksum)."""
    selector = selector_labels(names, "proxy")
    labels = common_labels(names, "proxy", image_version(settings.proxy_image))
    health = {"httpGet": {"path": "/healthz", "port": PROXY_HEALTH_PORT}, "periodSeconds": 5}
    return {
        "replicas": settings.proxy_replicas,
        "selector": {"matchLabels": selector},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": {
                "serviceAccountName": names.service_account,
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": pod_security(PROXY_UID),
                "affinity": affinity(settings, selector),
                "containers": [
                    {
                        "name": "haproxy",
                        "image": settings.proxy_image,
                        "imagePullPolicy": settings.image_pull_policy,
                        "command": ["sh", "-c", PROXY_START],
                        "env": [
                            secret_env("REDIS_PASSWORD", names.secret, PASSWORD_KEY),
                            secret_env(
                                "REDIS_PREVIOUS_PASSWORD",
                                names.secret,
                                PREVIOUS_PASSWORD_KEY,
                                optional=True,
                            ),
                        ],
                        "ports": [
                            *container_ports(settings, "redis", REDIS_PORT, REDIS_TLS_PORT),
                            {"name": "health", "containerPort": PROXY_HEALTH_PORT},
                            *(
                                [{"name": "metrics", "containerPort": PROXY_METRICS_PORT}]
                                if settings.metrics.enabled
                                else []
                            ),
                        ],
                        "resources": settings.resources["proxy"].as_kubernetes(),
                        "securityContext": restricted_container_security(),
                        "readinessProbe": {**health, "failureThreshold": 2},
                        "livenessProbe": {**health, "failureThreshold": 6},
                        "volumeMounts": [
                            {"name": "config", "mountPath": "/config"},
                            *proxy_tls_mounts(settings),
                        ],
                    }
                ],
                "volumes": [
                    {"name": "config", "configMap": {"name": names.proxy_config_map}},
                    *proxy_tls_volumes(settings, names),
                ],
            },
        },
    }
