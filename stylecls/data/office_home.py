"""Office-Home: ``office_home/<Art|Clipart|Product|Real World>/<class>/*.jpg``, 65 classes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from stylecls.data.folder import domain_split, read_domains
from stylecls.data.records import Card, build_frame, summarise

DOMAINS = ("Art", "Clipart", "Product", "Real World")
CLASSES = sorted(
    "Alarm_Clock Backpack Batteries Bed Bike Bottle Bucket Calculator Calendar Candles Chair Clipboards "
    "Computer Couch Curtains Desk_Lamp Drill Eraser Exit_Sign Fan File_Cabinet Flipflops Flowers Folder Fork "
    "Glasses Hammer Helmet Kettle Keyboard Knives Lamp_Shade Laptop Marker Monitor Mop Mouse Mug Notebook Oven "
    "Pan Paper_Clip Pen Pencil Postit_Notes Printer Push_Pin Radio Refrigerator Ruler Scissors Screwdriver "
    "Shelf Sink Sneakers Soda Speaker Spoon TV Table Telephone ToothBrush Toys Trash_Can Webcam".split()
)
EXPECTED = {
    "images": 15588,
    "classes": 65,
    "domains": {"Art": 2427, "Clipart": 4365, "Product": 4439, "Real World": 4357},
}

CARD = Card(
    name="office_home",
    title="Office-Home",
    folder="office_home",
    layout="office_home/<Art|Clipart|Product|Real World>/<class>/*.jpg (65 classes; 'Real World' has a space, "
    "'Real_World' is accepted too)",
    source="https://www.hemanthdv.org/officeHomeDataset.html",
)


def load(root: Path, seed: int = 0) -> pd.DataFrame:
    found = read_domains(root, DOMAINS, CLASSES, CARD, aliases={"Real World": "Real_World"})
    splits = domain_split(found, root, seed)
    info = summarise(
        found.rows,
        dataset="office_home",
        root=root,
        classes=CLASSES,
        domains=DOMAINS,
        expected=EXPECTED,
        split_source="seeded",
        warnings=found.warnings,
        extra={"seed": seed},
    )
    return build_frame(found.rows, splits, CLASSES, info)
