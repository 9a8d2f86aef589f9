"""Chat generation with a local ``transformers`` causal LM: its chat template, left-padded batches."""

import asyncio

from sycl.generation.chat import Completion
from sycl.models.towers import load_pretrained


class HFChat:
    """Generates answers for ``batch_size`` chats per ``model.generate`` call, one batch at a time.

    ``sampling`` is passed to ``generate`` (max_new_tokens, do_sample, temperature, top_p, ...).
    The model must have a chat template (instruction-tuned models do). Generation runs in a worker
    thread so that the progress bar and the journal keep going meanwhile.
    """

    parallel = 1

    def __init__(
        self,
        model: str,
        batch_size: int = 8,
        device: str = "auto",
        dtype: str = "auto",
        sampling: dict | None = None,
        seed: int = 0,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(seed)
        self.model, self.batch_size, self.sampling = model, batch_size, dict(sampling or {})
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        self.tokenizer = load_pretrained(AutoTokenizer, model)
        if not self.tokenizer.chat_template:
            raise ValueError(
                f"generator.model={model!r} has no chat template: use an instruction-tuned model, or add a "
                "template to its tokenizer_config.json"
            )
        self.tokenizer.padding_side = "left"  # decoder-only: the answer must follow the prompt directly
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.lm = load_pretrained(AutoModelForCausalLM, model, dtype=dtype).to(self.device).eval()
        eos = self.lm.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self.eos_ids = set(eos) if isinstance(eos, list) else {eos} - {None}

    def __repr__(self) -> str:
        return f"HFChat(model={self.model!r}, device={self.device!r}, batch_size={self.batch_size})"

    async def complete(self, chats: list[list[dict]]) -> list[Completion]:
        return await asyncio.to_thread(self._generate, chats)

    async def aclose(self) -> None:
        return None

    def _generate(self, chats: list[list[dict]]) -> list[Completion]:
        import torch

        prompts = [self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in chats]
        # The template already holds the special tokens the model expects (BOS, role markers); token type
        # ids, which some tokenizers add, make generate() fail on a causal LM.
        inputs = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=False, return_token_type_ids=False
        ).to(self.device)
        with torch.inference_mode():
            output = self.lm.generate(**inputs, pad_token_id=self.tokenizer.pad_token_id, **self.sampling)
        completions = []
        for prompt_mask, new_ids in zip(
            inputs["attention_mask"], output[:, inputs["input_ids"].shape[1] :], strict=True
        ):
            new_ids = new_ids.tolist()
            stop = next((i for i, token in enumerate(new_ids) if token in self.eos_ids), None)
            completions.append(
                Completion(
                    text=self.tokenizer.decode(new_ids[:stop], skip_special_tokens=True),
                    finish_reason="length" if stop is None else "stop",
                    prompt_tokens=int(prompt_mask.sum()),
                    completion_tokens=len(new_ids) if stop is None else stop + 1,
                )
            )
        return completions
