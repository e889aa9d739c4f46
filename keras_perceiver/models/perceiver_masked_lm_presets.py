"""Published masked language models: backbone preset + masked-LM head (data, not code)."""

PERCEIVER_MASKED_LM_PRESETS = {
    "language_perceiver": {
        "description": (
            "Perceiver IO language model on UTF-8 bytes (arXiv 2107.14795, section 4.1): 2048 bytes, "
            "d_model 768, 256 x 1280 latents, 1 x 26 self-attends, 8/8 heads, qk 256, v 1280, "
            "decoder queries 2048 x 768 (qk 256), tied output embeddings. transformers checkpoint "
            "`deepmind/language-perceiver`."
        ),
        "num_parameters": 201_108_230,
        "backbone": "language_perceiver",
        "config": {"decoder_num_cross_attention_heads": 8, "decoder_qk_channels": 256},
    },
    "language_perceiver_sentencepiece": {
        "description": (
            "Perceiver IO language model on SentencePiece tokens (arXiv 2107.14795, section 4.1, the "
            "SentencePiece baseline of the bytes model): the language_perceiver architecture with 512 "
            "tokens and a 32,000-piece vocabulary (the T5-style SentencePiece vocabulary size; set the "
            "backbone preprocessor's `vocab_size` to your tokenizer's). Widths as TF Model Garden's "
            "perceiver project (official/projects/perceiver/configs/perceiver.py). Parameter count equal "
            "to transformers' PerceiverForMaskedLM with the same config. No public checkpoint."
        ),
        "num_parameters": 223_155_456,
        "backbone": "language_perceiver_sentencepiece",
        "config": {"decoder_num_cross_attention_heads": 8, "decoder_qk_channels": 256},
    },
}
