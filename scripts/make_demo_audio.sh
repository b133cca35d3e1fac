#!/usr/bin/env bash
# Makes the short synthetic demo recordings in audio/ (run once; the results are committed).
# Two synthetic voices read a scripted homework review; no real person is recorded.
# Needs Debian's espeak-ng and sox (with libsox-fmt-all for Ogg Vorbis).
set -euo pipefail
cd "$(dirname "$0")/.."
out=audio
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() {  # say FILE VOICE TEXT
  espeak-ng -v "$2" -s 150 -w "$tmp/raw.wav" "$3"
  sox "$tmp/raw.wav" -r 22050 -c 1 "$1" pad 0 0.6
}

make_session() {  # make_session NAME LINES...
  local name=$1; shift
  local parts=() i=0
  for line in "$@"; do
    i=$((i + 1))
    if [ $((i % 2)) -eq 1 ]; then voice=en+m3; else voice=en+f2; fi
    say "$tmp/$name-$i.wav" "$voice" "$line"
    parts+=("$tmp/$name-$i.wav")
  done
  sox "${parts[@]}" -C 3 "$out/$name.ogg"
}

make_session demo-session-a \
  "Welcome back. Last week we agreed that you would keep a mood diary every evening. How did that go?" \
  "I managed it on five of the seven evenings. On the weekend I forgot, because my sister visited." \
  "Five evenings is a real achievement. What did you notice when you read your entries?" \
  "My mood was lowest in the mornings, and better on the days when I went for a walk." \
  "That is an important observation. It links your activity to your mood, just as we discussed." \
  "Yes. I did not expect the walks to matter so much." \
  "For the coming week, shall we plan a short walk on three mornings? When would suit you?" \
  "Monday, Wednesday and Friday, before breakfast." \
  "What might get in the way?" \
  "If it rains I will probably stay in. Then I could do the stretching exercises instead." \
  "Good plan. Could you summarise the homework in your own words?" \
  "Three morning walks, or stretching if it rains, and I note my mood before and after."

make_session demo-session-b \
  "Let us look at the thought record you agreed to complete. Did you bring it?" \
  "I started it, but I found it difficult to find the automatic thoughts." \
  "That is very common at the beginning. Which situation did you write about?" \
  "The meeting at work, when my manager did not greet me." \
  "And what went through your mind in that moment?" \
  "That she is unhappy with my work and that I will lose my job." \
  "How strongly did you believe that, from zero to one hundred?" \
  "About eighty. Now, talking about it, maybe forty." \
  "So writing it down and looking at it helped a little. What do you conclude?" \
  "That my first thought is not always right." \
  "Next week, could you fill in two more thought records, including the alternative thought column?" \
  "Yes, I will try. I will do it the same evening, so I still remember what happened."

make_session demo-session-c \
  "Last session we talked about activity scheduling. How did the week go?" \
  "Honestly, I did not do much. I felt too tired, and my back was hurting." \
  "Thank you for being open about that. What got in the way the most?" \
  "Mostly the tiredness. And I did not know where to start." \
  "Perhaps the plan was too ambitious. What would be a small first step?" \
  "Maybe calling my friend once this week." \
  "That sounds manageable. When would you call her?" \
  "On Thursday afternoon, after lunch." \
  "And if you feel too tired on Thursday?" \
  "Then I will send her a message instead, and call on Saturday."

make_session demo-session-d \
  "We are getting close to the end of therapy. Today I would like to work on your relapse prevention plan." \
  "I have already written down some early warning signs, like sleeping badly and avoiding friends." \
  "Excellent, you prepared this on your own. What helps you when you notice these signs?" \
  "Going for walks, keeping my daily structure, and talking to my partner." \
  "Which of these worked best in the last weeks?" \
  "The walks, definitely. I did them almost every day." \
  "You have achieved a lot through your own effort. For next week, please complete the plan with the steps you would take." \
  "I will add a list of people I can call and the exercises from the sessions."
echo "made: $(ls "$out")"
