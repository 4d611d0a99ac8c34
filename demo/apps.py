#!/usr/bin/python3
"""Three small LLM "applications" for tokentap's demo.

They talk to the local mock provider (its URL in MOCK_URL) with Python's
urllib, exactly as a real program talks to a provider: they know nothing
of tokentap, which watches them from outside.

  apps.py copilot   a support copilot: a long system prompt, reused on
                    every call, so the provider serves it from its cache
  apps.py summarise a summariser: streamed Anthropic messages
  apps.py agent     a small agent loop: a dozen calls whose context grows
"""
import json
import os
import ssl
import sys
import urllib.request

BASE = os.environ["MOCK_URL"]
CTX = ssl.create_default_context(cafile=os.environ.get("MOCK_CA") or None)

POLICY = " ".join(
    f"Policy {i}: refunds within {i % 30 + 1} days need order number and reason."
    for i in range(400))


def post(path, body, headers=None):
    req = urllib.request.Request(
        BASE + path, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json",
                 "Authorization": "Bearer sk-demo-not-a-real-key",
                 **(headers or {})})
    with urllib.request.urlopen(req, context=CTX, timeout=30) as resp:
        return resp.read()


def copilot():
    questions = ["Where is my order?", "Can I get a refund?", "How long do refunds take?",
                 "Do you ship abroad?", "My parcel is damaged.", "Change my address."]
    for tenant, q in zip(["acme", "acme", "globex", "acme", "initech", "globex"], questions):
        post("/v1/chat/completions",
             {"model": "gpt-4o", "max_tokens": 300,
              "messages": [{"role": "system", "content": POLICY},
                           {"role": "user", "content": q}]},
             {"X-Tokentap-Tenant": tenant})
    print("copilot: answered", len(questions), "tickets")


def summarise():
    for doc in range(3):
        text = " ".join(f"Paragraph {p} of report {doc} says sales grew." for p in range(60))
        post("/v1/messages",
             {"model": "claude-3-5-haiku-20241022", "max_tokens": 400, "stream": True,
              "messages": [{"role": "user", "content": "Summarise: " + text}]},
             {"anthropic-version": "2023-06-01"})
    print("summarise: summarised 3 reports")


def agent():
    history = [{"role": "system", "content": "You are a planning agent. Use tools."}]
    for step in range(12):
        history.append({"role": "user", "content": f"Observation {step}: " + "data " * 40})
        post("/v1/chat/completions",
             {"model": "gpt-4o-mini", "max_tokens": 200, "messages": history})
        history.append({"role": "assistant", "content": "Thinking about step %d" % step})
    print("agent: finished a 12-step plan")


if __name__ == "__main__":
    {"copilot": copilot, "summarise": summarise, "agent": agent}[sys.argv[1]]()
