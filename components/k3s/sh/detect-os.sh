# shellcheck shell=bash
# platform:k3s: detect_os: sets FAMILY (debian | rhel) from /etc/os-release (prepended to prepare.sh).
# Static text: values are assigned by components/k3s/scripts.py before it; this header
# (up to the '# ---' line) is not rendered.
# ---

detect_os() {
  local ID="" ID_LIKE="" VERSION_ID="" major
  [ -r /etc/os-release ] || die "/etc/os-release is missing: cannot tell the distribution"
  # shellcheck disable=SC1091
  . /etc/os-release
  major=${VERSION_ID%%.*}
  [[ $major =~ ^[0-9]+$ ]] || major=0
  case " $ID $ID_LIKE " in
    *" debian "* | *" ubuntu "*) FAMILY=debian ;;
    *" rhel "* | *" fedora "* | *" centos "*) FAMILY=rhel ;;
    *) die "unsupported distribution '$ID' (Debian 11+, Ubuntu 22.04+, RHEL 9+ and rebuilds are supported)" ;;
  esac
  case $ID in
    debian) [ "$major" -ge 11 ] || die "Debian ${VERSION_ID:-?} is too old (11 or later is required)" ;;
    ubuntu) [ "$major" -ge 22 ] || die "Ubuntu ${VERSION_ID:-?} is too old (22.04 or later is required)" ;;
    fedora) ;;
    *)
      if [ "$FAMILY" = rhel ] && [ "$major" -lt 9 ]; then
        die "$ID ${VERSION_ID:-?} is too old (9 or later is required)"
      fi
      ;;
  esac
  log "host family: $FAMILY ($ID ${VERSION_ID:-?})"
}
