"""A fine-tuned Hugging Face checkpoint back to GGUF, for the llama.cpp engine.
Pure: no Django.

The packaged GGUF is the template: every metadata field (architecture,
hyper-parameters, tokenizer vocabulary, merges, special tokens, chat
template) is copied from it unchanged, except the file type and the name;
each of its tensors is replaced by the checkpoint's tensor of the same role,
in llama.cpp's layout (the query and key projections permuted back, as
llama.cpp's converter permutes them and transformers' GGUF loader undoes),
quantised with the `gguf` package: matrices to Q8_0, norms kept in F32.

`logit_gap` checks an export: llama.cpp's next-token logits for a few
prompts against the checkpoint's own (transformers), the largest absolute
difference and whether the most likely next token agrees.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

QUANTISATION = "Q8_0"  # llama.cpp's 8-bit blocks: the floor ("Q8_0 or better")


class ExportError(RuntimeError):
    pass


def _llama_permute(weights, heads: int):
    """llama.cpp's order of a query or key projection's rows (rotary pairs
    interleaved), from transformers' order."""
    rows = weights.shape[0]
    return weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def gguf_tensors(state: dict, reader, arch) -> dict:
    """The checkpoint's tensors (name -> float32 numpy array), renamed and laid
    out as the template GGUF holds them; raises ExportError when a template
    tensor has no counterpart or another shape."""
    import gguf
    import numpy as np

    fields = {f.name: f.contents() for f in reader.fields.values() if not f.name.startswith("tokenizer.")}
    prefix = fields["general.architecture"]
    blocks = int(fields[f"{prefix}.block_count"])
    heads = int(fields[f"{prefix}.attention.head_count"])
    kv_heads = int(fields.get(f"{prefix}.attention.head_count_kv", heads))
    names = gguf.get_tensor_name_map(arch, blocks)
    renamed = {}
    for hf_name, tensor in state.items():
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            continue
        array = tensor.detach().float().cpu().numpy()
        if name.endswith("attn_q.weight"):
            array = _llama_permute(array, heads)
        elif name.endswith("attn_k.weight"):
            array = _llama_permute(array, kv_heads)
        renamed[name] = np.ascontiguousarray(array, dtype=np.float32)
    out = {}
    for tensor in reader.tensors:
        if tensor.name not in renamed:
            raise ExportError(f"The checkpoint has no tensor for {tensor.name}")
        expected = tuple(int(d) for d in reversed(tensor.shape))  # GGUF lists dimensions innermost first
        if renamed[tensor.name].shape != expected:
            raise ExportError(f"{tensor.name}: shape {renamed[tensor.name].shape}, the template's is {expected}")
        out[tensor.name] = renamed[tensor.name]
    return out


def export_gguf(checkpoint: str | Path, template: str | Path, out_path: str | Path, *, name: str = "") -> Path:
    """Write `out_path` (atomically): the template GGUF's metadata and
    tokenizer with the checkpoint's weights, matrices in Q8_0."""
    import gguf
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM

    template, out_path = Path(template), Path(out_path)
    reader = gguf.GGUFReader(str(template))
    arch_name = reader.get_field(gguf.Keys.General.ARCHITECTURE).contents()
    arch = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == arch_name), None)
    if arch is None:
        raise ExportError(f"Unknown GGUF architecture {arch_name!r}")
    model = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32, local_files_only=True)
    tensors = gguf_tensors(model.state_dict(), reader, arch)
    del model

    partial = out_path.with_name(out_path.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), arch_name)
    for field in reader.fields.values():
        if field.name == gguf.Keys.General.ARCHITECTURE or field.name.startswith("GGUF."):
            continue  # the writer writes these itself
        kind = field.types[0]
        value = field.contents()
        if field.name == gguf.Keys.General.FILE_TYPE:
            value = int(gguf.LlamaFileType.MOSTLY_Q8_0)
        elif field.name == gguf.Keys.General.NAME and name:
            value = name
        sub_type = field.types[-1] if kind == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, value, kind, sub_type=sub_type)
    q8 = gguf.GGMLQuantizationType.Q8_0
    block = gguf.GGML_QUANT_SIZES[q8][0]
    for tensor in reader.tensors:
        data = tensors[tensor.name]
        if data.ndim >= 2 and data.shape[-1] % block == 0:
            writer.add_tensor(tensor.name, gguf.quants.quantize(data, q8), raw_dtype=q8)
        else:  # norms (and anything a Q8_0 block does not divide) stay float
            writer.add_tensor(tensor.name, data.astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(partial, out_path)
    return out_path


# -- the check ---------------------------------------------------------------
CLEAR_LEAD = 0.5  # logits: a next token this far ahead of the runner-up is no near tie
MIN_CORRELATION = 0.99  # an export whose logits correlate less with the checkpoint's is broken


@dataclass(frozen=True)
class LogitGap:
    """llama.cpp on the export against transformers on the checkpoint, next-token logits."""

    correlation: float  # the lowest Pearson correlation over the prompts
    max_abs: float  # the largest absolute difference (Q8_0 and llama.cpp's own arithmetic: about 1 of ~30)
    top1_agree: float  # share of prompts with a clear leader (CLEAR_LEAD) whose leader is the same
    clear: int  # how many prompts had a clear leader

    @property
    def ok(self) -> bool:
        return self.correlation >= MIN_CORRELATION and self.top1_agree == 1.0

    def as_dict(self) -> dict:
        return {
            "correlation": round(self.correlation, 5),
            "max_abs": round(self.max_abs, 4),
            "top1_agree": self.top1_agree,
            "clear_prompts": self.clear,
            "ok": self.ok,
        }


def llama_logits(gguf_path: str | Path, token_lists: list[list[int]], threads: int = 2):
    """llama.cpp's logits for the token after each prompt (cyllama's low-level API)."""
    import numpy as np
    from cyllama.llama import llama_cpp as L

    class Model(L.LlamaModel):
        # cyllama 0.2.18's logits accessors ask the model for n_vocab, which
        # only its vocabulary has (AttributeError otherwise).
        @property
        def n_vocab(self):
            return self.get_vocab().n_vocab

    L.disable_logging()
    L.llama_backend_init()
    model = Model(str(gguf_path), L.LlamaModelParams())
    rows = []
    for tokens in token_lists:
        context_params = L.LlamaContextParams()
        context_params.n_ctx = max(64, len(tokens) + 8)
        context_params.n_batch = context_params.n_ctx
        context_params.n_threads = context_params.n_threads_batch = threads
        context = L.LlamaContext(model, context_params)
        context.decode(L.llama_batch_get_one(list(tokens), 0))
        rows.append(np.array(context.get_logits_ith(-1), dtype=np.float32))
        context.close()
    return np.stack(rows)


def logit_gap(gguf_path: str | Path, checkpoint: str | Path, prompts: list[str]) -> LogitGap:
    """How far the exported file's next-token logits are from the checkpoint's."""
    import numpy as np
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(checkpoint), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=torch.float32, local_files_only=True).eval()
    token_lists = [tokenizer(p, add_special_tokens=False).input_ids for p in prompts]
    with torch.inference_mode():
        reference = np.stack([model(torch.tensor([t])).logits[0, -1].float().numpy() for t in token_lists])
    exported = llama_logits(gguf_path, token_lists)
    ordered = np.sort(reference, axis=-1)
    clear = ordered[:, -1] - ordered[:, -2] >= CLEAR_LEAD
    agree = exported.argmax(-1) == reference.argmax(-1)
    return LogitGap(
        correlation=float(min(np.corrcoef(r, e)[0, 1] for r, e in zip(reference, exported))),
        max_abs=float(np.abs(exported - reference).max()),
        top1_agree=float(agree[clear].mean()) if clear.any() else 1.0,
        clear=int(clear.sum()),
    )
