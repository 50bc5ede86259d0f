"""Fixed wording of the realistic profile: campaign wrappers, benchmark instruction
lines, everyday phrasings, shared benign templates.

Each campaign shape has several wrappers; a seed picks one, so that seeds
differ in wording and no threshold can fit one text. ``{P}`` marks the payload.
"""

from __future__ import annotations

#: One wrapper per alternative: (campaign shape, list of wrappers).
WRAPPERS = {
    "cot-benchmark": (
        "You are an expert problem solver. Work through the problem below step by step, "
        "writing out every intermediate step of your reasoning in full detail before you "
        "commit to an answer. Do not skip any step, even obvious ones.\n\n{P}\n\nAfter your "
        "complete chain of thought, give the final answer on its own line as 'Final answer: "
        "<answer>'.",
        "Solve the following task. Think carefully and show your full reasoning process, "
        "explaining each step and why it follows from the previous one, then verify your "
        "result.\n\n### Task\n{P}\n\n### Required format\nReasoning: <your detailed step by step "
        "reasoning>\nAnswer: <the final answer only>",
        "{P}\n\nBefore answering, reason through this problem thoroughly in a step-by-step "
        "manner. Lay out all of your thinking, including any assumptions, calculations and "
        "checks you make along the way. Conclude with the final answer in the form \\boxed{{}}.",
    ),
    "long-document": (
        "Read the following document carefully and produce an in-depth analysis. Identify its "
        "main claims, evaluate the quality of the evidence offered for each claim, point out "
        "any logical gaps, and explain your reasoning at every step.\n\nDocument:\n{P}\n\nWrite "
        "the analysis as numbered sections, then a one-paragraph overall assessment.",
        "Below is a long text. Analyze it as an expert reviewer would: summarize each section, "
        "extract every factual claim, and reason step by step about whether each claim is "
        "supported.\n\n<document>\n{P}\n</document>\n\nShow your complete reasoning before the "
        "final verdict.",
    ),
    "thin-hydra": (
        "Answer the question below as a world-class expert. First think step by step and write "
        "down your entire reasoning, then give a concise final answer. Be rigorous and do not "
        "leave out any part of your thought process.\n\nQuestion: {P}",
        "I need a detailed, expert-level response to the following. Please explain your "
        "thinking step by step, covering the key considerations, and finish with a short "
        "summary of the answer.\n\n{P}\n\nMake sure the reasoning is complete and explicit.",
    ),
    "proxy": (
        "Respond to the input below with a thorough explanation. Break the problem into parts, "
        "reason about each part explicitly, and then combine the parts into a final response. "
        "Input:\n{P}\nEnd of input. Include all of your intermediate reasoning.",
        "Act as a senior analyst. For the item below, walk through your analysis step by step "
        "and justify every conclusion you reach.\n\nItem: {P}\n\nEnd with 'Conclusion:' followed "
        "by your final judgement.",
    ),
    "rubric-grading": (
        "You are grading a student's answer. Use the rubric to assign a score from 0 to 10, and "
        "explain in detail, criterion by criterion, why the answer earns or loses points.\n\n"
        "Rubric: correctness (4 points), completeness (3 points), clarity (3 points).\n\n{P}\n\n"
        "Give your detailed grading rationale first, then the score as 'Score: N/10'.",
        "Evaluate the response below against the rubric. For each rubric item, quote the "
        "relevant part of the response, reason about whether it meets the criterion, and award "
        "points.\n\nRubric:\n1. Accuracy of the facts\n2. Quality of the reasoning\n3. "
        "Organisation and clarity\n\n{P}\n\nFinish with the total score out of 10.",
    ),
}

#: Sentences of the agentic campaigns' system-style wrapper; each account words
#: every sentence its own way (the wrapper is reworded, the task is not).
AGENT_CLAUSES = (
    ("You are an autonomous software engineering agent working in a sandboxed repository.",
     "You act as a coding agent that operates inside an isolated copy of a code repository.",
     "Your role: an independent programming agent with access to a private repository sandbox."),
    ("Before every action, think step by step and write out your full reasoning.",
     "Always reason explicitly, one step at a time, and record all of your thinking before you "
     "act.",
     "Write down a complete step-by-step rationale prior to taking any action."),
    ("You can call the tools read_file, write_file, run_tests and search_code.",
     "Available tools: read_file, write_file, run_tests, search_code.",
     "The tools at your disposal are read_file, write_file, run_tests and search_code."),
    ("When you are done, output a summary of the changes and the reasoning behind each one.",
     "Finish by summarising every change you made together with the reasoning that led to it.",
     "At the end, list all modifications and explain the thinking behind each of them."),
)
AGENT_TASK_LEAD = ("Task:", "Your task:", "Here is the task:", "Assignment:")

#: The reworded campaign: one instruction, each account its own wording.
REWORD_CLAUSES = (
    ("Explain the reasoning behind the answer to the following problem in full detail,",
     "Give a complete, detailed explanation of how to reach the answer to the problem below,",
     "Walk me through the full reasoning needed to solve this problem,",
     "Provide an exhaustive step-by-step derivation of the solution to the problem that "
     "follows,"),
    ("covering every intermediate step",
     "without skipping any of the intermediate steps",
     "making each intermediate step explicit",
     "spelling out all the steps in between"),
    ("and state the final result clearly at the end.",
     "and finish by stating the final answer.",
     "then give the final answer on the last line.",
     "and close with the final result."),
)

#: Benchmark families: (instruction line(s) around ``{Q}``, payload kind).
BENCHMARKS = (
    ("The following are multiple choice questions (with answers) about {S}.\n\n{Q}\nAnswer:",
     "mcq"),
    ("Question: {Q}\nAnswer:", "math"),
    ("Complete the following Python function so that it passes its tests.\n\n```python\n{Q}\n"
     "```", "code"),
    ("Read the passage below and answer the question that follows.\n\nPassage:\n{Q}", "reading"),
    ("Premise: {Q}\nDoes the premise entail the hypothesis? Answer yes, no, or maybe.", "nli"),
    ("Solve the following logic puzzle.\n\n{Q}", "logic"),
)
SUBJECTS = ("abstract algebra", "anatomy", "astronomy", "business ethics", "clinical knowledge",
            "college biology", "college chemistry", "college physics", "computer security",
            "conceptual physics", "econometrics", "electrical engineering", "formal logic",
            "global facts", "high school geography", "high school psychology", "jurisprudence",
            "machine learning", "management", "marketing", "medical genetics", "nutrition",
            "philosophy", "prehistory", "professional law", "public relations", "sociology",
            "virology", "world religions", "international law")

#: Everyday phrasings that millions of ordinary users share, around their own text.
EVERYDAY = (
    "Summarize the following text:\n\n{P}", "Can you summarize this?\n{P}",
    "Translate this into French:\n{P}", "Translate the following into Spanish: {P}",
    "Fix the grammar in this paragraph:\n\n{P}", "Please proofread this: {P}",
    "Make this email more professional:\n\n{P}", "Rewrite this to be clearer:\n{P}",
    "What does this code do?\n\n{P}", "Explain this code to me\n```\n{P}\n```",
    "Can you find the bug in this code?\n{P}", "TL;DR\n\n{P}",
    "What is the main point of this article?\n\n{P}", "Make this shorter: {P}",
    "{P}\n\nsummarize", "{P}\n\ncan you make this sound better", "Write a reply to this email:\n{P}",
    "Turn this into bullet points:\n{P}", "Explain like I'm five: {P}",
    "Is this correct? {P}",
)

#: Long shared templates that many ordinary users copy from prompt collections.
POPULAR_TEMPLATES = (
    "I want you to act as an English translator, spelling corrector and improver. I will speak "
    "to you in any language and you will detect the language, translate it and answer in the "
    "corrected and improved version of my text, in English. Keep the meaning the same, but make "
    "it more literary. I want you to only reply the correction, the improvements and nothing "
    "else, do not write explanations. My first sentence is: {P}",
    "I want you to act as a Linux terminal. I will type commands and you will reply with what "
    "the terminal should show. I want you to only reply with the terminal output inside one "
    "unique code block, and nothing else. Do not write explanations. My first command is {P}",
    "I want you to act as a motivational coach. I will provide you with some information about "
    "someone's goals and challenges, and it will be your job to come up with strategies that "
    "can help this person achieve their goals. My first request is: {P}",
)

#: Popular prompts copied whole, by many accounts.
POPULAR_FIXED = (
    "Write a haiku about autumn leaves.", "Tell me a joke about programmers.",
    "What are some good books to read this summer?", "Give me 10 ideas for a birthday party.",
    "Explain quantum computing in simple terms.", "What is the meaning of life?",
    "Write a short poem about the ocean.", "How do I make a good cup of coffee?",
    "Suggest a name for my new puppy.", "What should I cook for dinner tonight?",
)

#: Students asking for steps in their own words: elicitation phrasing, benign.
HOMEWORK = ("can you solve this step by step? {P}", "{P} show your work please",
            "how do i solve this: {P}", "{P}\nexplain step by step", "help with hw: {P}",
            "{P}", "I don't get this problem, can you walk me through it? {P}")

SHARED_APP = (
    "You are the customer support assistant for {C}. Answer the customer politely and only "
    "using the policy below. If the policy does not cover the question, say that a human agent "
    "will follow up.\n\nPolicy: Orders ship within two business days. Returns are accepted "
    "within 30 days of delivery with the original receipt. Refunds are issued to the original "
    "payment method within 5 to 7 business days. Damaged items are replaced free of charge."
    "\n\nCustomer message: {P}")
COMPANIES = ("Brightwave", "Northpeak", "Tidal Labs", "Greenleaf", "Orbitly", "Cobalt Bank")
EVAL_HARNESS = ("{P}", "{P}\n\nAnswer with only the letter of the correct option.",
                "{P}\nRespond with the final answer only.")
