"""Named landmarks on the default head, for users who guide the registration by hand.

Each is defined by what the face does rather than by a vertex number, so it means the same on every build of the
head: the skin vertex nearest the middle of the region a telling ARKit shape moves most (a mouth corner in
mouthSmile, the middle of an upper lid in eyeBlink, an outer brow in browOuterUp); the nose tip as the most forward
skin point on the mid-line, and the chin as the most forward mid-line point that jawOpen moves, well below the mouth
corners (the lower lip, which jawOpen moves most, lies above that). Left and right are the character's own (+X).
"""

from __future__ import annotations

import numpy as np

from ..expression_space import CHANNEL_INDEX

# name -> the ARKit shape whose largest skin motion marks it (None: the nose tip, found geometrically)
_DEFINITIONS: dict[str, str | None] = {
    "nose_tip": None,
    "chin": "jawOpen",
    "mouth_corner_left": "mouthSmileLeft",
    "mouth_corner_right": "mouthSmileRight",
    "upper_lid_left": "eyeBlinkLeft",
    "upper_lid_right": "eyeBlinkRight",
    "brow_outer_left": "browOuterUpLeft",
    "brow_outer_right": "browOuterUpRight",
}
LANDMARK_NAMES: tuple[str, ...] = tuple(_DEFINITIONS)
MIDLINE_M = 0.005  # the nose tip and the chin are looked for within this distance of the mid-plane x = 0
STRONG = 0.7  # a shape's "region" is where it moves the skin at least this share of its largest motion
CHIN_BELOW_MOUTH_M = 0.02  # the chin is looked for at least this far below the mouth corners


def default_head_landmarks(head) -> dict[str, int]:
    """{name: vertex index of the default head} for every name in LANDMARK_NAMES."""
    skin = np.flatnonzero(head.vertex_parts == head.PART_NAMES.index("skin"))
    verts = head.vertices
    mid = skin[np.abs(verts[skin, 0]) < MIDLINE_M]

    def motion(channel, where):
        return np.linalg.norm(head.deltas[CHANNEL_INDEX[channel], where], axis=1)

    out = {}
    for name, channel in _DEFINITIONS.items():
        if channel is None:
            out[name] = int(mid[np.argmin(verts[mid, 1])])  # the face looks toward -Y
        elif name == "chin":
            continue
        else:
            strength = motion(channel, skin)
            region = skin[strength >= STRONG * strength.max()]
            centre = verts[region].mean(0)
            out[name] = int(region[np.argmin(np.linalg.norm(verts[region] - centre, axis=1))])
    mouth_z = verts[out["mouth_corner_left"], 2]
    jaw = motion("jawOpen", mid)
    low = mid[(verts[mid, 2] < mouth_z - CHIN_BELOW_MOUTH_M) & (jaw >= 0.5 * jaw.max())]
    out["chin"] = int(low[np.argmin(verts[low, 1])])
    return {name: out[name] for name in LANDMARK_NAMES}
