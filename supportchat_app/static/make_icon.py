"""Draw SupportChat's icon (supportchat.png, supportchat.ico): a white speech bubble on a blue rounded square.

Run `uv run python supportchat_app/static/make_icon.py` to redraw both files; drawn at 1024 px and downsampled
so the edges are anti-aliased. Pillow is a dev dependency only: the app itself never imports this.
"""

from pathlib import Path

from PIL import Image, ImageDraw

S = 1024
img = Image.new("RGBA", (S, S), (0, 0, 0, 0))
d = ImageDraw.Draw(img)
# background: rounded square with a vertical blue gradient
grad = Image.new("RGBA", (S, S))
gd = ImageDraw.Draw(grad)
top, bottom = (37, 99, 235), (29, 78, 216)
for y in range(S):
    t = y / (S - 1)
    gd.line([(0, y), (S, y)], fill=(*(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True)), 255))
mask = Image.new("L", (S, S), 0)
ImageDraw.Draw(mask).rounded_rectangle([40, 40, S - 40, S - 40], radius=220, fill=255)
img.paste(grad, (0, 0), mask)
# bubble body + tail
white = (255, 255, 255, 255)
d.rounded_rectangle([200, 230, 824, 690], radius=150, fill=white)
d.polygon([(300, 640), (470, 660), (270, 830)], fill=white)
# three dots
for cx in (362, 512, 662):
    d.ellipse([cx - 52, 460 - 52, cx + 52, 460 + 52], fill=(37, 99, 235, 255))
out = Path(__file__).resolve().parent
icon = img.resize((256, 256), Image.Resampling.LANCZOS)
icon.save(out / "supportchat.png", optimize=True)
icon.save(out / "supportchat.ico", sizes=[(n, n) for n in (16, 24, 32, 48, 64, 128, 256)])
print("ok")
