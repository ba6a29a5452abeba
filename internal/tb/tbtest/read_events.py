"""Reads the TensorBoard event files of a folder with TensorBoard's own readers and prints what
they hold as JSON: every scalar, image and histogram event with its step from the legacy
event_accumulator.EventAccumulator, and every event by tag (steps) and the text from
plugin_event_accumulator.EventAccumulator, the one TensorBoard's server uses without its Rust data
server (the legacy one does not purge tensors, so text comes from the plugin one). Orphaned data is
purged as TensorBoard does (purge_orphaned_data, the default): a SessionLog START at step S drops
the earlier files' events at steps >= S. The HParams dashboard's session start info is parsed with
the hparams plugin's own protobuf module."""

import json
import sys

from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import plugin_event_accumulator as pea
from tensorboard.plugins.hparams import plugin_data_pb2


def main(folder):
    acc = ea.EventAccumulator(
        folder,
        size_guidance={ea.SCALARS: 0, ea.IMAGES: 0, ea.HISTOGRAMS: 0, ea.TENSORS: 0},
    )
    acc.Reload()
    tags = acc.Tags()
    plugin = pea.EventAccumulator(folder, size_guidance={pea.TENSORS: 0})
    plugin.Reload()
    try:
        text_tags = set(plugin.PluginTagToContent("text"))
    except KeyError:  # no event with the text plugin's metadata
        text_tags = set()
    hparams = {}
    try:
        for content in plugin.PluginTagToContent("hparams").values():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                for k, v in data.session_start_info.hparams.items():
                    hparams[k] = getattr(v, v.WhichOneof("kind"))
    except KeyError:  # no hparams
        pass
    out = {
        "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags["scalars"]},
        "images": {
            t: [[e.step, e.width, e.height, len(e.encoded_image_string)] for e in acc.Images(t)]
            for t in tags["images"]
        },
        "histograms": {
            t: [[e.step, e.histogram_value.num, e.histogram_value.min, e.histogram_value.max] for e in acc.Histograms(t)]
            for t in tags["histograms"]
        },
        "text": {
            t: [[e.step, e.tensor_proto.string_val[0].decode("utf-8")] for e in plugin.Tensors(t)]
            for t in sorted(text_tags)
        },
        "plugin_steps": {t: [e.step for e in plugin.Tensors(t)] for t in plugin.Tags()["tensors"]},
        "hparams": hparams,
        "file_version": acc.file_version,
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
