"""What the default pipeline does with campaigns written in other languages.

Generates benign traffic (``distill-radar generate`` with no campaigns), then
plants campaigns whose instruction is written in one language (Spanish,
French, German, Chinese) around the generator's payloads, and one campaign
whose same instruction is sent in English by half its accounts and in Spanish
by the other half. Runs ``distill-radar batch`` (default: lexical + semantic)
and, for each planted campaign, prints the recall of its accounts, how many
campaigns they ended up in, and whether the two-language campaign came out as
one campaign. Prints JSON.

    python bench/languages.py [--accounts 30] [--per-account 20] [--seed 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, os.path.dirname(__file__))
from common import emit, machine

from distill_radar.pipelines.batch import pipeline as batch
from distill_radar.pipelines.synth import generate
from distill_radar.pipelines.synth import payloads as G

INSTRUCTIONS = {
    "en": ("You are an expert problem solver. Solve the following problem. Think step by step "
           "and show your complete chain of thought before the final answer. Do not skip any "
           "steps, even obvious ones. Problem: {P}"),
    "es": ("Eres un experto en resolver problemas. Resuelve el siguiente problema. Piensa paso "
           "a paso y muestra tu cadena de razonamiento completa antes de la respuesta final. "
           "No omitas ningún paso, ni siquiera los obvios. Problema: {P}"),
    "fr": ("Tu es un expert en résolution de problèmes. Résous le problème suivant. Réfléchis "
           "étape par étape et montre tout ton raisonnement avant la réponse finale. Ne saute "
           "aucune étape, même évidente. Problème : {P}"),
    "de": ("Du bist ein Experte für Problemlösung. Löse die folgende Aufgabe. Denke Schritt für "
           "Schritt und zeige deinen vollständigen Gedankengang vor der endgültigen Antwort. "
           "Überspringe keinen Schritt, auch keinen offensichtlichen. Aufgabe: {P}"),
    "zh": ("你是解决问题的专家。请解决下面的问题。请一步一步地思考，并在给出最终答案之前展示你完整的"
           "思考过程。不要跳过任何步骤，即使是显而易见的步骤。问题：{P}"),
}
#: Planted campaigns: name -> languages its accounts write in (split evenly).
CAMPAIGNS = {"es-only": ("es",), "fr-only": ("fr",), "de-only": ("de",), "zh-only": ("zh",),
             "en+es": ("en", "es")}


def plant(logs: Path, accounts: int, per_account: int, seed: int) -> pl.DataFrame:
    """Append the planted campaigns' rows as one more parquet part; return their truth."""
    rng = np.random.default_rng(seed)
    base = pl.read_parquet(logs / "exchanges")
    t0, t1 = base["ts"].min(), base["ts"].max()
    rows = []
    for name, langs in CAMPAIGNS.items():
        for a in range(accounts):
            lang = langs[a % len(langs)]
            acct = f"planted-{name}-{a:03d}"
            kinds = rng.choice(len(G.PAYLOAD_KINDS), per_account)
            for k, payload in enumerate(G.payloads(rng, kinds)):
                rows.append({"exchange_id": f"{acct}-{k}", "account_id": acct,
                             "prompt": INSTRUCTIONS[lang].replace("{P}", payload),
                             "campaign": name, "lang": lang})
    planted = pl.DataFrame(rows)
    span = (t1 - t0).total_seconds()
    ts = [t0 + np.timedelta64(int(x), "s") for x in rng.uniform(0, span, planted.height)]
    out = planted.with_columns(pl.Series("ts", ts).cast(base.schema["ts"]))
    out.select("exchange_id", "account_id", "ts", "prompt").write_parquet(
        logs / "exchanges" / "part-planted.parquet")
    return planted.select("account_id", "campaign", "lang").unique()


def measure(truth: pl.DataFrame, out: Path) -> dict:
    accounts = pl.read_parquet(out / "accounts.parquet").select("account_id", "campaign_id")
    joined = truth.join(accounts, on="account_id", how="left")
    result = {}
    for name in CAMPAIGNS:
        rows = joined.filter(pl.col("campaign") == name)
        flagged = rows.filter(pl.col("campaign_id").is_not_null())
        per_lang = {lang: round(g["campaign_id"].is_not_null().mean(), 3)
                    for (lang,), g in rows.group_by("lang")}
        result[name] = {"recall": round(flagged.height / rows.height, 3),
                        "recall_by_language": per_lang,
                        "campaigns": int(flagged["campaign_id"].n_unique())}
    benign_flagged = accounts.filter(pl.col("campaign_id").is_not_null()
                                     & ~pl.col("account_id").str.starts_with("planted-"))
    result["benign_accounts_flagged"] = benign_flagged.height
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exchanges", type=int, default=20_000)
    ap.add_argument("--accounts", type=int, default=30, help="accounts per planted campaign")
    ap.add_argument("--per-account", type=int, default=20)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp) / "G"
        generate.generate(logs, exchanges=args.exchanges, accounts=args.exchanges // 15,
                          campaigns=0, seed=args.seed)
        truth = plant(logs, args.accounts, args.per_account, args.seed)
        runs = {}
        for mode, extra in (("default", []), ("no_semantic", ["--no-semantic"])):
            out = Path(tmp) / mode
            batch.run(["--input", str(logs / "exchanges"), "--output", str(out), "--no-report",
                       *extra])
            runs[mode] = measure(truth, out)
    emit({"bench": "languages", "machine": machine(), "accounts_per_campaign": args.accounts,
          "exchanges_per_account": args.per_account, "runs": runs})


if __name__ == "__main__":
    main()
