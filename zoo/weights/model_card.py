"""The model card (README.md) pushed with a model: Hub metadata plus source, preprocessing, labels,
accuracy, usage and citation."""
from __future__ import annotations

import json

from huggingface_hub import ModelCard, ModelCardData

from zoo.registry import I3D_CITATION

DATASETS = {"kinetics400": "kinetics-400", "kinetics600": "kinetics-600"}


def render_card(repo_id: str, spec: dict) -> ModelCard:
    """A :class:`huggingface_hub.ModelCard` for the model described by ``spec`` (our ``config.json``)."""
    entry = spec.get("entry") or {}
    labels = spec.get("labels")
    reported = entry.get("reported") or {}
    data = ModelCardData(
        library_name="quovadis",
        license=entry.get("license", "apache-2.0"),
        tags=["video-classification", "action-recognition", "i3d", "pytorch", "safetensors", "quovadis",
              spec["arch"].replace("_", "-")],
        datasets=[DATASETS[labels]] if labels in DATASETS else None,
        pipeline_tag="video-classification",
        metrics=["accuracy"],
    )
    name = spec.get("zoo_name") or repo_id.split("/")[-1]
    prep = spec.get("preprocessing")
    accuracy = "\n".join(f"| {k.replace('_', ' ')} | {v} |" for k, v in reported.items()) or "| (not reported) | |"
    text = f"""---
{data.to_yaml()}
---

# {name}

{entry.get('description') or 'A video classification model built with quovadis.'}

- **Architecture:** `{spec['arch']}` (config below), input `(B, C, T, H, W)` float in [-1, 1]
- **Modality:** {spec.get('modality', 'rgb')}
- **Source:** {entry.get('source') or spec.get('source') or 'trained with quovadis'}
- **Labels:** {labels} ({spec.get('num_classes')} classes, in logit order in `config.json`)

## Preprocessing

```json
{json.dumps(prep, indent=2)}
```

RGB: frames at 25 fps, short side 256, centre crop 224, scaled to [-1, 1]. Flow: TV-L1 in pixels,
clipped to [-20, 20] and divided by 20. `zoo.info(name).transform` applies it.

## Accuracy reported by the source

| metric | value |
|---|---|
{accuracy}

## Usage

```python
import zoo
model = zoo.load("hf-hub:{repo_id}")            # eval mode, weights checked
logits = model(clip)                            # clip: (B, C, T, 224, 224) in [-1, 1]
```

## Config

```json
{json.dumps({k: v for k, v in spec.items() if k not in ('entry', 'label_names')}, indent=2)}
```

## Citation

```bibtex
{entry.get('citation') or I3D_CITATION}
```
"""
    return ModelCard(text)
