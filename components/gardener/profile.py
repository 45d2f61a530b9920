"""Preview-time checks of a shoot's inputs against Gardener's cloud profile (pure).

`ShootProvider.check` fetches `GET /gardener/v2/{cloud}/cloud-profiles` when credentials are
present and reports every value the profile does not offer, with the valid choices, so a typo
in a machine type fails the merge-request preview instead of a create 10 minutes in. Only
values that *change* are checked (`olds`): a running shoot whose version was since deprecated
must not fail every preview. Unknown values (previews) and a profile without the relevant list
are skipped, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from components.gardener.schema import Issue, contains_unknown, dig

MAX_CHOICES = 12


def _names(items: object, key: str = "name") -> list[str]:
    return [str(i[key]) for i in items if isinstance(i, Mapping) and i.get(key)] if isinstance(items, list) else []


def _choices(values: Sequence[str]) -> str:
    shown = list(dict.fromkeys(values))[:MAX_CHOICES]
    more = len(set(values)) - len(shown)
    return ", ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def pick_profile(profiles: object, region: str, name: str | None = None) -> Mapping[str, Any] | None:
    """The profile the shoot uses: by name when known, else the one that serves the region."""
    items = [p for p in profiles if isinstance(p, Mapping)] if isinstance(profiles, list) else []
    if name:
        named = [p for p in items if p.get("name") == name]
        if named:
            return named[0]
    serving = [p for p in items if region.lower() in (r.lower() for r in _names(p.get("regions")))]
    if serving:
        return serving[0]
    return items[0] if len(items) == 1 else None


def _changed(d: Mapping[str, Any], olds: Mapping[str, Any], *path: str | int) -> bool:
    new, old = dig(d, *[str(p) for p in path]), dig(olds, *[str(p) for p in path])
    return new is not None and not contains_unknown(new) and new != old


def _old_worker(olds: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for w in dig(olds, "shoot_provider", "workers") or []:
        if isinstance(w, Mapping) and w.get("name") == name:
            return w
    return {}


def profile_issues(d: Mapping[str, Any], olds: Mapping[str, Any], profile: Mapping[str, Any]) -> list[Issue]:
    """Every changed value the cloud profile does not offer, each message with the valid choices."""
    issues: list[Issue] = []
    pname = profile.get("name") or "the cloud profile"
    versions = [v for v in dig(profile, "kubernetes", "versions") or [] if isinstance(v, Mapping)]
    offered = [str(v["version"]) for v in versions if v.get("version") and v.get("classification") != "expired"]
    want = d.get("kubernetes_version")
    if offered and _changed(d, olds, "kubernetes_version") and want not in offered:
        supported = [str(v["version"]) for v in versions
                     if v.get("version") and v.get("classification") in (None, "supported")]
        issues.append(Issue(("kubernetes_version",), f"{want} is not offered by cloud profile {pname}; "
                                                     f"supported: {_choices(supported or offered)}"))
    constraints = dig(profile, "provider_config", "constraints") or {}
    for leaf, key in ((("shoot_provider", "infrastructure_config", "floating_pool_name"), "floating_pools"),
                      (("shoot_provider", "load_balancer_provider"), "load_balancer_providers")):
        allowed = _names(constraints.get(key))
        value = dig(d, *leaf)
        if allowed and _changed(d, olds, *leaf) and value not in allowed:
            issues.append(Issue(leaf, f"{value!r} is not offered by cloud profile {pname}; choose one of "
                                      f"{_choices(allowed)}"))
    types = [t for t in profile.get("machine_types") or [] if isinstance(t, Mapping) and t.get("usable", True)]
    type_names = _names(types)
    images = [i for i in profile.get("machine_images") or [] if isinstance(i, Mapping)]
    region = str(d.get("region") or "").lower()
    zones = next((_names(r.get("zones")) for r in profile.get("regions") or []
                  if isinstance(r, Mapping) and str(r.get("name", "")).lower() == region), [])
    for i, w in enumerate(dig(d, "shoot_provider", "workers") or []):
        if not isinstance(w, Mapping) or contains_unknown(w.get("name")):
            continue
        old = _old_worker(olds, str(w.get("name")))
        base: tuple[str | int, ...] = ("shoot_provider", "workers", i)
        mtype = dig(w, "machine", "type")
        if type_names and mtype is not None and not contains_unknown(mtype) and mtype != dig(old, "machine", "type") \
                and mtype not in type_names:
            issues.append(Issue((*base, "machine", "type"), f"{mtype!r} is not a usable machine type in cloud "
                                                            f"profile {pname}; choose one of {_choices(type_names)}"))
        image, version = dig(w, "machine", "image_name"), dig(w, "machine", "image_version")
        candidates = [im for im in images if image is None or im.get("name") == image]
        if images and image is not None and not candidates:
            issues.append(Issue((*base, "machine", "image_name"), f"{image!r} is not an image of cloud profile "
                                                                 f"{pname}; choose one of {_choices(_names(images))}"))
        elif (candidates and version is not None and not contains_unknown(version)
              and version != dig(old, "machine", "image_version")):
            offered_images = [str(v["version"]) for im in candidates for v in im.get("versions") or []
                              if isinstance(v, Mapping) and v.get("version") and v.get("classification") != "expired"]
            if offered_images and version not in offered_images:
                issues.append(Issue((*base, "machine", "image_version"),
                                    f"{version} is not offered for {image or 'any image'} by cloud profile {pname}; "
                                    f"choose one of {_choices(sorted(set(offered_images), reverse=True))}"))
        wz = w.get("zones")
        if zones and isinstance(wz, list) and not contains_unknown(wz) and wz != old.get("zones"):
            bad = [z for z in wz if z not in zones]
            if bad:
                issues.append(Issue((*base, "zones"), f"{', '.join(map(str, bad))} not in region {d.get('region')} "
                                                      f"of cloud profile {pname}; choose from {_choices(zones)}"))
    return issues
