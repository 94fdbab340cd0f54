"""Update handlers by role: private chat, answers, feedback, community, buttons, errors."""
