#!/bin/sh
# Write pycni's network configuration list for one node into its CNI config directory.
#
#   conf/install-netconf.sh POD_CIDR [DIR]      e.g. conf/install-netconf.sh 10.244.1.0/24
#
# Renders the example list (conf/examples/10-pycni-cbr0.conflist, or $PYCNI_NETCONF_TEMPLATE) for a
# Kubernetes node:
#   - its IPv4 "subnet" becomes POD_CIDR and its IPv4 "gateway" the first address of it;
#   - "hairpinMode" becomes true (a pod must reach itself through its own Service);
#   - a `bandwidth` plugin (capability "bandwidth": the kubernetes.io/ingress-bandwidth and
#     egress-bandwidth annotations) and a `portmap` plugin (capability "portMappings": hostPort) are
#     appended when the list has none (the example ends with both); PYCNI_PORTMAP=0 leaves portmap
#     out, also a portmap entry the list has on a line of its own, as the example has it;
#   - with $MTU set, every "mtu" becomes $MTU (kindnet uses the node's eth0 MTU);
#   - with IP_MASQ=true (or false), every "ipMasq" becomes that;
#   - with $CNI_VERSION set, the list's "cniVersion" becomes it: runtimes built with libcni older
#     than 1.2 (Debian 12's containerd 1.6) reject spec 1.1.0 results, so use 1.0.0 there.
# The file goes into DIR (default /etc/cni/net.d) as 00-pycni.conflist (or $PYCNI_NETCONF_NAME):
# containerd loads only the first config file by name, so ours must sort before kindnet's
# 10-kindnet.conflist and anything else there. It is written under a hidden temporary name that
# no runtime loads and renamed into place, so a runtime never reads half a file.
# Plain POSIX sh, sed and mktemp: a kind node has no Python packages to rely on.
set -eu

usage() {
  echo "usage: $0 POD_CIDR [DIR]   (IPv4 pod CIDR of this node, e.g. 10.244.1.0/24)" >&2
  exit 2
}

[ $# -ge 1 ] && [ $# -le 2 ] || usage
cidr=$1
dir=${2:-/etc/cni/net.d}
here=$(cd "$(dirname "$0")" && pwd)
template=${PYCNI_NETCONF_TEMPLATE:-$here/examples/10-pycni-cbr0.conflist}
name=${PYCNI_NETCONF_NAME:-00-pycni.conflist}

die() { echo "install-netconf: $*" >&2; exit 1; }

case $name in
  */*|.*) die "PYCNI_NETCONF_NAME must be a plain file name, got '$name'" ;;
  *.conflist) ;;
  *) die "PYCNI_NETCONF_NAME must end in .conflist, got '$name'" ;;
esac
[ -r "$template" ] || die "template $template not found"

# Parse and check a.b.c.d/len; compute the first address (the gateway host-local would pick).
echo "$cidr" | grep -Eq '^([0-9]{1,3}\.){3}[0-9]{1,3}/[0-9]{1,2}$' \
  || die "'$cidr' is not an IPv4 CIDR (IPv6 and dual-stack are not rendered; edit the list by hand)"
addr=${cidr%/*}
len=${cidr#*/}
[ "$len" -ge 8 ] && [ "$len" -le 30 ] || die "prefix length /$len of '$cidr' is not within /8../30"
oldifs=$IFS; IFS=.
# shellcheck disable=SC2086
set -- $addr
IFS=$oldifs
for o in "$@"; do [ "$o" -le 255 ] || die "'$cidr': octet $o out of range"; done
n=$(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 ))
mask=$(( (0xffffffff << (32 - len)) & 0xffffffff ))
[ $(( n & mask )) -eq "$n" ] || die "'$cidr' has host bits set; give the network address"
g=$(( n + 1 ))
gateway="$(( (g >> 24) & 255 )).$(( (g >> 16) & 255 )).$(( (g >> 8) & 255 )).$(( g & 255 ))"

# The template must hold exactly one IPv4 subnet to replace, and no per-range bounds that would
# fall outside the new subnet.
v4='"[0-9]{1,3}(\.[0-9]{1,3}){3}'
subnets=$(grep -Eo "\"subnet\"[[:space:]]*:[[:space:]]*$v4/[0-9]+\"" "$template" | wc -l)
[ "$subnets" -eq 1 ] || die "$template has $subnets IPv4 \"subnet\" keys; expected exactly one"
if grep -Eq "\"range(Start|End)\"[[:space:]]*:[[:space:]]*$v4\"" "$template"; then
  die "$template sets rangeStart/rangeEnd; they would not follow the new subnet"
fi
if [ -n "${MTU:-}" ]; then
  echo "$MTU" | grep -Eq '^[0-9]+$' && [ "$MTU" -ge 68 ] && [ "$MTU" -le 65535 ] \
    || die "MTU='$MTU' is not within 68..65535"
fi

# Plugins to append: only where the list has none of that type. They go before the "]" that closes
# "plugins", which must be the list's last key (the last two lines are "]" and "}").
extra=""
grep -Eq '"type"[[:space:]]*:[[:space:]]*"bandwidth"' "$template" \
  || extra="$extra    {\"type\": \"bandwidth\", \"capabilities\": {\"bandwidth\": true}}
"
if [ "${PYCNI_PORTMAP:-1}" != 0 ] && ! grep -Eq '"type"[[:space:]]*:[[:space:]]*"portmap"' "$template"; then
  extra="$extra    {\"type\": \"portmap\", \"capabilities\": {\"portMappings\": true}}
"
fi

mkdir -p "$dir"
tmp=$(mktemp "$dir/.$name.XXXXXX")
trap 'rm -f "$tmp" "$tmp.r" "$tmp.p"' EXIT
case ${CNI_VERSION:-} in
  ""|0.3.0|0.3.1|0.4.0|1.0.0|1.1.0) ;;
  *) die "CNI_VERSION='$CNI_VERSION': use 0.3.0, 0.3.1, 0.4.0, 1.0.0 or 1.1.0 (bandwidth needs 0.3.0+)" ;;
esac
version_expr='s#^##'  # no-op unless CNI_VERSION is set
if [ -n "${CNI_VERSION:-}" ]; then
  version_expr="s#(\"cniVersion\"[[:space:]]*:[[:space:]]*)\"[0-9.]+\"#\\1\"$CNI_VERSION\"#"
fi
case ${IP_MASQ:-} in
  ""|true|false) ;;
  *) die "IP_MASQ='$IP_MASQ': use true or false" ;;
esac
masq_expr='s#^##'  # no-op unless IP_MASQ is set
if [ -n "${IP_MASQ:-}" ]; then
  masq_expr="s#(\"ipMasq\"[[:space:]]*:[[:space:]]*)(true|false)#\\1$IP_MASQ#"
fi
mtu_expr='s#^##'  # no-op unless MTU is set
if [ -n "${MTU:-}" ]; then
  mtu_expr="s#(\"mtu\"[[:space:]]*:[[:space:]]*)[0-9]+#\\1$MTU#"
fi
sed -E \
  -e "s#(\"subnet\"[[:space:]]*:[[:space:]]*)$v4/[0-9]+\"#\\1\"$cidr\"#" \
  -e "s#(\"gateway\"[[:space:]]*:[[:space:]]*)$v4\"#\\1\"$gateway\"#" \
  -e "s#(\"hairpinMode\"[[:space:]]*:[[:space:]]*)false#\\1true#" \
  -e "$mtu_expr" \
  -e "$version_expr" \
  -e "$masq_expr" \
  "$template" > "$tmp.r"
if [ "${PYCNI_PORTMAP:-1}" = 0 ]; then
  # drop a one-line portmap entry, and the comma it leaves dangling on the entry before it
  awk '
    { line[NR] = $0 }
    END {
      for (i = 1; i <= NR; i++) {
        if (line[i] ~ /^[[:space:]]*\{"type"[[:space:]]*:[[:space:]]*"portmap".*\},?[[:space:]]*$/) {
          if (line[i] !~ /,[[:space:]]*$/ && i > 1) sub(/,[[:space:]]*$/, "", line[i - 1])
          drop[i] = 1
        }
      }
      for (i = 1; i <= NR; i++) if (!drop[i]) print line[i]
    }' "$tmp.r" > "$tmp.p" && mv "$tmp.p" "$tmp.r"
fi
EXTRA=$extra awk '
  { line[NR] = $0 }
  END {
    n = NR
    while (n > 0 && line[n] ~ /^[[:space:]]*$/) n--
    close_list = n - 1
    if (line[n] !~ /^[[:space:]]*}[[:space:]]*$/ || line[close_list] !~ /^[[:space:]]*][[:space:]]*$/) {
      if (ENVIRON["EXTRA"] != "") { print "last two lines are not ] and }" > "/dev/stderr"; exit 1 }
      close_list = n + 1
    }
    for (i = 1; i <= n; i++) {
      if (i == close_list - 1 && ENVIRON["EXTRA"] != "") {
        extra = ENVIRON["EXTRA"]
        sub(/\n$/, "", extra)
        gsub(/\n/, ",\n", extra)
        print line[i] ","
        print extra
      } else {
        print line[i]
      }
    }
  }' "$tmp.r" > "$tmp" || die "cannot append plugins to $template: \"plugins\" must be its last key"
rm -f "$tmp.r"
grep -Fq "\"$cidr\"" "$tmp" || die "rendering $template did not place $cidr"
if command -v python3 >/dev/null 2>&1; then  # a syntax check where an interpreter happens to exist
  python3 -m json.tool "$tmp" >/dev/null || die "rendering $template did not give valid JSON"
fi
chmod 0644 "$tmp"
mv -f "$tmp" "$dir/$name"
trap - EXIT

# Say so when another file would still be loaded first (containerd reads only the first one).
for f in "$dir"/*.conf "$dir"/*.conflist "$dir"/*.json; do
  [ -e "$f" ] || continue
  b=$(basename "$f")
  [ "$b" = "$name" ] && continue
  if [ "$(printf '%s\n%s\n' "$b" "$name" | LC_ALL=C sort | head -n1)" = "$b" ]; then
    echo "install-netconf: warning: $f sorts before $name; containerd would load it instead" >&2
  fi
done
echo "$dir/$name"
