#!/usr/bin/env bash
# A single-host Ceph cluster with a radosgw S3 endpoint, for running the integration suite on
# real distributed storage: one monitor, one memstore OSD (pool size 1), no manager, radosgw.
#
#   .ci/ceph.sh install          apt packages (root; ~40 s)
#   .ci/ceph.sh start DIR        start everything under DIR; writes DIR/env (S3E_TEST_* and
#                                AWS_* exports: `. DIR/env` points the tests and host-test at it)
#   .ci/ceph.sh stop DIR         stop the daemons and remove DIR
#
# Auth inside the cluster is off; the S3 endpoint still verifies SigV4 for the user created
# here (a wrong secret gets 403 SignatureDoesNotMatch).
set -euo pipefail

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() { # seconds description command...
    local limit=$1 what=$2
    shift 2
    for _ in $(seq $((limit * 5))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    echo "ceph: $what did not come up within ${limit}s; logs in $DIR/log" >&2
    tail -n 20 "$DIR"/log/*.log >&2 || true
    exit 1
}

cmd=${1:-}
case "$cmd" in
install)
    if command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null; then
        exit 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends radosgw ceph-mon ceph-osd >/dev/null
    ;;
start)
    DIR=$(realpath -m "${2:?usage: ceph.sh start DIR}")
    rm -rf "$DIR"
    mkdir -p "$DIR"/{mon,osd0,rgw,run,log}
    FSID=$(cat /proc/sys/kernel/random/uuid)
    MON_PORT=$(free_port)
    RGW_PORT=$(free_port)
    CONF=$DIR/ceph.conf
    cat >"$CONF" <<EOF
[global]
fsid = $FSID
mon host = v1:127.0.0.1:$MON_PORT
ms bind msgr2 = false
auth cluster required = none
auth service required = none
auth client required = none
mon allow pool size one = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
# The OSD is placed in the CRUSH map below. Left on, the OSD's own update at start can race
# its first monitor session and abort it ("wrong fsid").
osd crush update on start = false
osd class update on start = false
# The monitor refuses to start when its filesystem has under 5 % free (CI machines often do: a
# big disk nearly full). Its store here is a few MiB and the OSD keeps its data in memory.
mon data avail crit = ${S3E_CEPH_MON_AVAIL_CRIT:-0}
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
keyring = $DIR/keyring
[mon.a]
mon data = $DIR/mon
[osd.0]
osd data = $DIR/osd0
osd objectstore = memstore
memstore device bytes = 1073741824
[client.rgw.x]
rgw data = $DIR/rgw
rgw frontends = beast endpoint=127.0.0.1:$RGW_PORT
EOF
    ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    monmaptool --create --addv a "[v1:127.0.0.1:$MON_PORT]" --fsid "$FSID" "$DIR/monmap" >/dev/null
    ceph-mon -c "$CONF" --mkfs -i a --monmap "$DIR/monmap"
    ceph-mon -c "$CONF" -i a
    wait_for 30 "the monitor" ceph -c "$CONF" --connect-timeout 2 mon stat

    OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
    OSD_ID=$(ceph -c "$CONF" osd new "$OSD_UUID")
    ceph-osd -c "$CONF" -i "$OSD_ID" --mkfs --osd-uuid "$OSD_UUID" 2>>"$DIR/log/mkfs.log"
    ceph -c "$CONF" osd crush add "osd.$OSD_ID" 1.0 root=default >/dev/null 2>&1
    for attempt in 1 2 3; do
        if ceph-osd -c "$CONF" -i "$OSD_ID" 2>>"$DIR/log/start.log"; then break; fi
        [ "$attempt" = 3 ] && { echo "ceph: the OSD did not start; logs in $DIR/log" >&2; exit 1; }
        sleep 1
    done
    wait_for 30 "the OSD" sh -c "ceph -c '$CONF' osd stat | grep -q '1 up'"

    radosgw -c "$CONF" -n client.rgw.x
    wait_for 60 "radosgw" python3 -c "import socket; socket.create_connection(('127.0.0.1', $RGW_PORT), 1)"

    ACCESS=S3E$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
    SECRET=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    radosgw-admin -c "$CONF" user create --uid=s3-election --display-name=s3-election \
        --access-key="$ACCESS" --secret-key="$SECRET" >/dev/null
    # The first object write creates RGW's data pools, which takes seconds: do it here, so
    # that the first request of a test does not time out.
    s3() { # method path [curl args]
        curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -X "$1" \
            --aws-sigv4 aws:amz:us-east-1:s3 --user "$ACCESS:$SECRET" \
            -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "http://127.0.0.1:$RGW_PORT$2" "${@:3}"
    }
    stored=no
    for _ in $(seq 60); do
        if [ "$(s3 PUT /warm-up)" = 200 ] && [ "$(s3 PUT /warm-up/object --data-binary x)" = 200 ]; then
            stored=yes
            break
        fi
        sleep 1
    done
    if [ $stored != yes ]; then
        echo "ceph: radosgw stores no object within 60 s; logs in $DIR/log" >&2
        exit 1
    fi
    cat >"$DIR/env" <<EOF
export S3E_TEST_ENDPOINT=http://127.0.0.1:$RGW_PORT
export S3E_TEST_REGION=us-east-1
export S3E_TEST_ACCESS_KEY_ID=$ACCESS
export S3E_TEST_SECRET_ACCESS_KEY=$SECRET
# The same store for \`host-test probe|demo|node\` and other AWS tools.
export AWS_ENDPOINT_URL_S3=http://127.0.0.1:$RGW_PORT
export AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=$ACCESS
export AWS_SECRET_ACCESS_KEY=$SECRET
EOF
    echo "ceph: radosgw on http://127.0.0.1:$RGW_PORT (cluster in $DIR)"
    ;;
stop)
    DIR=$(realpath -m "${2:?usage: ceph.sh stop DIR}")
    for pid in "$DIR"/run/*.pid; do
        [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
    done
    sleep 1
    for pid in "$DIR"/run/*.pid; do
        [ -f "$pid" ] && kill -9 "$(cat "$pid")" 2>/dev/null || true
    done
    rm -rf "$DIR"
    ;;
*)
    echo "usage: $0 install | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
