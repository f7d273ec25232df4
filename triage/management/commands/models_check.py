"""Load every voice model the platform uses and report what loaded and how long it took."""

import time

from django.core.management.base import BaseCommand, CommandError

from voice.provisioning import ModelSettings, ModelUnavailable


class Command(BaseCommand):
    help = (
        "Load the ASR, TTS, LLM and safety-net embedding models (real inference smoke test); "
        "exits non-zero if any fails."
    )

    def handle(self, *args, **options):
        from voice.asr import WhisperRecognizer
        from voice.llm import build_generator
        from voice.provisioning import asr_model_dir, llm_gguf_path, piper_voice_paths
        from voice.tts import PiperSynthesizer

        settings = ModelSettings.from_env()
        failures = []

        def check(name, load):
            start = time.perf_counter()
            try:
                detail = load()
            except ModelUnavailable as exc:
                failures.append(name)
                self.stdout.write(self.style.ERROR(f"{name:4} FAILED  {exc}"))
                return
            except Exception as exc:  # any loader error is a failed check, reported by name
                failures.append(name)
                self.stdout.write(self.style.ERROR(f"{name:4} FAILED  {type(exc).__name__}: {exc}"))
                return
            self.stdout.write(f"{name:4} OK      {time.perf_counter() - start:6.2f} s  {detail}")

        def asr():
            path = asr_model_dir(settings)
            WhisperRecognizer(path)
            return f"faster-whisper {settings.asr_model} ({path})"

        def tts():
            onnx, config = piper_voice_paths(settings)
            synth = PiperSynthesizer.load(onnx, config)
            audio = b"".join(synth.synthesize("Hello."))
            return f"piper {onnx.name}, {synth.sample_rate} Hz, {len(audio) // 2} samples for 'Hello.'"

        def llm():
            gguf = llm_gguf_path(settings)
            generator = build_generator({"backend": "llama_cpp", "gguf_path": str(gguf)})
            generator.warmup()  # loads the weights and evaluates the fixed prompt prefix
            return f"{generator.name} {gguf.name} ({gguf.stat().st_size / 1e6:.0f} MB)"

        def emb():
            from voice.embedding import MiniLMEmbedder
            from voice.provisioning import embedding_model_dir

            path = embedding_model_dir(settings)
            vector = MiniLMEmbedder(path).embed(["my chest feels tight"])[0]
            return f"all-MiniLM-L6-v2 (safety net), {vector.shape[0]}-dim ({path})"

        check("ASR", asr)
        check("TTS", tts)
        check("LLM", llm)
        check("EMB", emb)
        if failures:
            raise CommandError(f"models_check failed: {', '.join(failures)}", returncode=1)
        self.stdout.write(self.style.SUCCESS("All models loaded."))
