"""Training Vitron: dataset records and readers, the collator, losses, the three stages and the
run loop behind ``vitron train`` (DESIGN §7).

Heavy modules (torch models, accelerate, peft) are imported by the submodules that need them, so
``import vitron.agent.training.records`` stays cheap for data writers such as the shapes world.
"""
