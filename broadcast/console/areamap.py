"""The area picker's map: the areas' GeoJSON polygons drawn as inline SVG, no map tiles."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

WIDTH = 320.0
MARGIN = 8.0


@dataclass(frozen=True)
class Shape:
    code: str
    name: str
    path: str  # SVG path data
    label_x: float
    label_y: float


@dataclass(frozen=True)
class AreaMap:
    width: float
    height: float
    shapes: list[Shape]


def rings(geojson: dict | None) -> list[list[list[float]]]:
    """The outer rings of a Polygon or MultiPolygon (holes do not matter for picking)."""
    if not geojson:
        return []
    geometry = geojson.get("geometry", geojson)  # a Feature or a bare geometry
    kind, coordinates = geometry.get("type"), geometry.get("coordinates") or []
    if kind == "Polygon":
        return coordinates[:1]
    if kind == "MultiPolygon":
        return [polygon[0] for polygon in coordinates if polygon]
    return []


def area_map(areas: Iterable) -> AreaMap | None:
    """Areas (``code``, ``name``, ``geojson``) in one SVG; None when no area has a shape."""
    drawn = [(area, rings(area.geojson)) for area in areas]
    drawn = [(area, shape) for area, shape in drawn if shape]
    if not drawn:
        return None
    points = [point for _, shape in drawn for ring in shape for point in ring]
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    # Equirectangular at the middle latitude: good enough over a municipality.
    x_scale = math.cos(math.radians((north + south) / 2))
    span_x = max((east - west) * x_scale, 1e-9)
    scale = (WIDTH - 2 * MARGIN) / span_x
    height = (north - south) * scale + 2 * MARGIN

    def project(lon: float, lat: float) -> tuple[float, float]:
        return MARGIN + (lon - west) * x_scale * scale, MARGIN + (north - lat) * scale

    shapes = []
    for area, shape in drawn:
        path, xs, ys = [], [], []
        for ring in shape:
            projected = [project(lon, lat) for lon, lat, *_ in ring]
            xs += [x for x, _ in projected]
            ys += [y for _, y in projected]
            path.append("M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in projected) + " Z")
        shapes.append(
            Shape(area.code, area.name, " ".join(path), sum(xs) / len(xs), sum(ys) / len(ys))
        )
    return AreaMap(WIDTH, round(height, 1), shapes)
