"""Office-Home: ``office_home/<Art|Clipart|Product|Real World>/<class>/*.jpg``, 65 classes."""

from __future__ import annotations

from pathlib import Path

from stylecls.data.catalog import Counts, Listing
from stylecls.data.registry import DatasetDef, register
from stylecls.data.scan import read_domains
from stylecls.data.sources import HubParquet, ParquetSchema
from stylecls.data.splits import domain_split
from stylecls.recipes import Recipe

DOMAINS = ("Art", "Clipart", "Product", "Real World")
CLASSES = tuple(sorted(
    "Alarm_Clock Backpack Batteries Bed Bike Bottle Bucket Calculator Calendar Candles Chair Clipboards "
    "Computer Couch Curtains Desk_Lamp Drill Eraser Exit_Sign Fan File_Cabinet Flipflops Flowers Folder Fork "
    "Glasses Hammer Helmet Kettle Keyboard Knives Lamp_Shade Laptop Marker Monitor Mop Mouse Mug Notebook Oven "
    "Pan Paper_Clip Pen Pencil Postit_Notes Printer Push_Pin Radio Refrigerator Ruler Scissors Screwdriver "
    "Shelf Sink Sneakers Soda Speaker Spoon TV Table Telephone ToothBrush Toys Trash_Can Webcam".split()
))
EXPECTED = Counts(
    images=15588, classes=65, domains={"Art": 2427, "Clipart": 4365, "Product": 4439, "Real World": 4357}
)


def read(root: Path, seed: int = 0) -> Listing:
    found = read_domains(root, DOMAINS, CLASSES, DATASET, aliases={"Real World": "Real_World"})
    splits = domain_split(found, root, seed)
    return Listing(found.rows, splits, CLASSES, DOMAINS, EXPECTED, "seeded", found.warnings)


DATASET = register(DatasetDef(
    name="office_home",
    title="Office-Home",
    help="65 classes in 4 domains (Art, Clipart, Product, Real World), 15,588 images",
    read=read,
    folder="office_home",
    layout="office_home/<Art|Clipart|Product|Real World>/<class>/*.jpg (65 classes; 'Real World' has a space, "
    "'Real_World' is accepted too)",
    source="https://www.hemanthdv.org/officeHomeDataset.html",
    domains=DOMAINS,
    classes=CLASSES,
    recipe=Recipe(arch="resnet50", img_size=224, epochs=60, batch_size=64, lr=0.025, weight_decay=1e-4,
                  warmup_epochs=3, label_smoothing=0.1),
    # flwrlabs/office-home: data/train-0000{0,1,2}-of-00003.parquet (15,588 rows), columns image, domain (string:
    # Art, Clipart, Product, Real World), label (class label, 65 names in sorted order: 0 Alarm_Clock ... 64 Webcam)
    downloads=(HubParquet("hub", "flwrlabs/office-home", size=1_158_984_115,
                          about="Flower's parquet copy of Office-Home (15,588 images)"),),
    parquet=ParquetSchema(image="image", label="label", domain="domain"),
))  # fmt: skip
