"""Province outlines: the map's base layer when no tile server can be reached.

An office without internet still needs to see where its stations are, so each province ships
a small GeoJSON outline (``gis/outlines/<name>.geojson``, sources and licences in the README
there). ``python -m gis.outline SOURCE.geojson --iso VN-13 --name "Quảng Ninh" -o OUT`` makes
one from a geoBoundaries ADM1 file: the province's polygons, islands under ``--min-island-km2``
left out, simplified in UTM so the tolerance is metres, coordinates rounded to about a metre.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Geod, Transformer
from shapely.geometry import MultiPolygon, Polygon, mapping, shape

from radmon.errors import InputError

OUTLINES_DIR = Path(__file__).resolve().parent / "outlines"
# Largest outline served: a browser draws it on every pan; a province needs far less.
MAX_OUTLINE_BYTES = 200_000
_GEOD = Geod(ellps="WGS84")


def outline_path(name_or_path: str) -> Path | None:
    """A shipped outline by name (``quang_ninh``), or a GeoJSON file's path; None for ""."""
    if not name_or_path:
        return None
    shipped = OUTLINES_DIR / f"{name_or_path}.geojson"
    if "/" not in name_or_path and "\\" not in name_or_path and shipped.is_file():
        return shipped
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in OUTLINES_DIR.glob("*.geojson"))) or "none"
        raise InputError(f"outline {name_or_path!r}: no such file (shipped outlines: {known})")
    return path


@cache
def _load(path: Path, mtime: float) -> bytes:
    body = path.read_bytes()
    if len(body) > MAX_OUTLINE_BYTES:
        raise InputError(f"{path}: {len(body)} bytes; simplify it below {MAX_OUTLINE_BYTES}")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise InputError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("type") not in (
        "FeatureCollection",
        "Feature",
    ):
        raise InputError(f"{path}: not a GeoJSON Feature or FeatureCollection")
    return body


def outline_bytes(name_or_path: str) -> bytes | None:
    """The outline's GeoJSON as stored (checked once per file version), or None when unset."""
    path = outline_path(name_or_path)
    if path is None:
        return None
    return _load(path, path.stat().st_mtime)


def outline_attribution(body: bytes) -> str:
    """The attribution its licence asks for, from the features' ``attribution`` properties."""
    document = json.loads(body)
    features = document["features"] if document.get("type") == "FeatureCollection" else [document]
    seen: list[str] = []
    for feature in features:
        text = (feature.get("properties") or {}).get("attribution")
        if text and text not in seen:
            seen.append(text)
    return "; ".join(seen)


# -- building an outline from a geoBoundaries file ---------------------------------------------


def _utm_for(lon: float, lat: float) -> CRS:
    zone = int((lon + 180) // 6) + 1
    return CRS.from_epsg((32600 if lat >= 0 else 32700) + zone)


def _area_km2(polygon: Polygon) -> float:
    return abs(_GEOD.geometry_area_perimeter(polygon)[0]) / 1e6


def _project(geometry: Polygon, transformer: Transformer) -> Polygon:
    def move(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    return shapely.transform(geometry, move)


def simplify_outline(
    geometry: Polygon | MultiPolygon,
    tolerance_m: float = 100.0,
    min_island_km2: float = 5.0,
    digits: int = 5,
) -> MultiPolygon:
    """The largest polygon and every other one of at least *min_island_km2*, simplified."""
    parts = list(geometry.geoms) if isinstance(geometry, MultiPolygon) else [geometry]
    if not parts:
        raise InputError("the outline has no polygon")
    largest = max(parts, key=_area_km2)
    kept = [p for p in parts if p is largest or _area_km2(p) >= min_island_km2]
    centre = largest.representative_point()
    utm = _utm_for(centre.x, centre.y)
    forward = Transformer.from_crs("EPSG:4326", utm, always_xy=True)
    back = Transformer.from_crs(utm, "EPSG:4326", always_xy=True)
    simple = []
    for part in kept:
        metric = _project(part, forward).simplify(tolerance_m, preserve_topology=True)
        if metric.is_empty:
            continue
        # a grid of 10^-digits degrees (1e-5: about a metre), kept valid while snapping
        snapped = shapely.set_precision(_project(metric, back), 10.0**-digits)
        simple.extend(shapely.get_parts(snapped))
    result = MultiPolygon([p for p in simple if isinstance(p, Polygon) and not p.is_empty])
    if result.is_empty:
        raise InputError("nothing left of the outline after simplification")
    return result


def build_outline(
    source: dict[str, Any],
    iso: str,
    properties: dict[str, Any],
    tolerance_m: float = 100.0,
    min_island_km2: float = 5.0,
) -> dict[str, Any]:
    """A one-feature FeatureCollection: the feature of *source* whose ``shapeISO`` is *iso*."""
    found = [
        f for f in source.get("features", []) if (f.get("properties") or {}).get("shapeISO") == iso
    ]
    if len(found) != 1:
        raise InputError(f"{len(found)} features with shapeISO {iso!r}; expected one")
    geometry = simplify_outline(shape(found[0]["geometry"]), tolerance_m, min_island_km2)
    feature = {
        "type": "Feature",
        "properties": {**properties, "shapeISO": iso},
        "geometry": mapping(geometry),
    }
    return {"type": "FeatureCollection", "features": [feature]}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gis.outline", description=__doc__)
    parser.add_argument("source", type=Path, help="a geoBoundaries ADM1 GeoJSON file")
    parser.add_argument("--iso", required=True, help="the province's shapeISO, e.g. VN-13")
    parser.add_argument("--name", required=True, help="the province's name, e.g. Quảng Ninh")
    parser.add_argument("--source-note", default="", help="where the source file came from")
    parser.add_argument("--licence", default="CC BY-SA 4.0")
    parser.add_argument("--attribution", default="")
    parser.add_argument("--tolerance-m", type=float, default=100.0)
    parser.add_argument("--min-island-km2", type=float, default=5.0)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    source = json.loads(args.source.read_text(encoding="utf-8"))
    properties = {
        "name": args.name,
        "source": args.source_note,
        "licence": args.licence,
        "attribution": args.attribution,
        "simplified": (
            f"islands under {args.min_island_km2:g} km² left out; "
            f"simplified to {args.tolerance_m:g} m in UTM; coordinates to 5 decimals"
        ),
    }
    document = build_outline(source, args.iso, properties, args.tolerance_m, args.min_island_km2)
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"
    args.output.write_text(text, encoding="utf-8")
    parts = len(document["features"][0]["geometry"]["coordinates"])
    print(f"{args.output}: {len(text.encode()):,} bytes, {parts} polygon(s)")


if __name__ == "__main__":
    main()
