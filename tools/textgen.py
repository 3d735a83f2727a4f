"""Chinese group-chat text from phrase lists: chit-chat by topic, questions, replies, ads.

No external data: every sentence is assembled from the lists below with a seeded
random.Random, so the same seed always gives the same text.
"""

from __future__ import annotations

import random

TOPICS = ("护肤", "读书", "健身")

# Acquisition channels and the members each brings: (channel, share of joins, lurker share).
# None is a join without a channel code. Friends brought by members stay and talk; the
# street QR promotion (地推) fills the group with members who never speak.
CHANNELS = (
    ("老带新", 0.30, 0.15),
    ("公众号文章", 0.25, 0.45),
    ("地推扫码", 0.25, 0.90),
    (None, 0.20, 0.45),
)
# How many early members run the street promotion and "invite" everyone it brings.
PROMOTERS = 2

GREETINGS = (
    "大家好",
    "早上好呀",
    "早安",
    "晚上好",
    "哈喽",
    "嗨嗨",
    "新人报到",
    "各位姐妹好",
    "群友们好",
    "刚下班",
    "午安",
    "周末愉快",
)

OPENERS = ("", "", "", "话说", "说真的", "对了", "哈哈", "嗯嗯", "其实", "我觉得", "感觉", "请问")

TOPIC_PHRASES: dict[str, tuple[str, ...]] = {
    "护肤": (
        "最近换季皮肤有点干",
        "油皮夏天真的太难了",
        "混干皮用这个水乳挺舒服的",
        "敏感肌千万别乱刷酸",
        "防晒一定要每天涂",
        "精华我一般晚上用",
        "面膜一周敷两三次就够了",
        "卸妆油要乳化干净",
        "我最近在用一个修护霜效果还不错",
        "屏障受损的话先停掉功效型产品",
        "早C晚A真的适合新手吗",
        "痘痘肌可以试试水杨酸",
        "北方冬天一定要加一层面霜",
        "成分党表示烟酰胺浓度别太高",
        "熬夜之后第二天脸色好差",
        "洗脸水温不要太高",
    ),
    "读书": (
        "这周读完了《活着》",
        "最近在看《百年孤独》人名好难记",
        "有人读过《人类简史》吗",
        "今天读了三十页",
        "推荐一本《被讨厌的勇气》",
        "纸质书还是电子书你们更喜欢哪个",
        "读书笔记我一般写在备忘录里",
        "这本书后半部分有点拖沓",
        "作者的观点挺有启发的",
        "每天睡前读半小时已经坚持一个月了",
        "《三体》第二部是真的好看",
        "这周的共读进度有点落后",
        "摘抄一句：生活不可能像你想象得那么好",
        "读书会的时间定了吗",
        "最近在听书通勤路上刚好",
        "这段话我反复看了好几遍",
    ),
    "健身": (
        "今天练腿了走路都在抖",
        "跑了五公里配速六分半",
        "深蹲重量终于上到八十公斤",
        "减脂期真的好想吃火锅",
        "蛋白粉你们都喝哪个牌子",
        "今天休息日拉伸一下",
        "跳绳两千个完成",
        "体脂降到百分之二十二了",
        "新手练背总是借力怎么办",
        "帕梅拉跟练了四十分钟",
        "早上空腹有氧效果好吗",
        "健身房人太多了器械都要排队",
        "膝盖有点疼这周先不跑了",
        "饮食控制比训练还难",
        "游泳一千米打卡",
        "平板支撑坚持了两分钟",
    ),
}

QUESTIONS = (
    "有人知道吗",
    "大家怎么看",
    "求推荐",
    "这个正常吗",
    "有没有同款",
    "怎么坚持下来的",
    "有懂的姐妹吗",
    "你们一般怎么安排时间",
    "多久能看到效果",
    "新手从哪里开始比较好",
)

REPLIES = (
    "同感",
    "我也是",
    "哈哈哈哈",
    "学到了",
    "收藏了",
    "谢谢分享",
    "说得对",
    "有道理",
    "加油",
    "真棒",
    "羡慕",
    "+1",
    "确实",
    "好的好的",
    "明白了",
    "太厉害了吧",
    "我试试看",
    "马住",
    "蹲一个后续",
    "一起加油",
)

EMOJI = ("😂", "👍", "🙏", "❤️", "🌹", "💪", "😊", "🤣", "[捂脸]", "[强]", "[玫瑰]", "[偷笑]", "✨")

AD_TEMPLATES = (
    "{hook}，有需要的{contact}",
    "正品{goods}代购，价格美丽，{contact}",
    "{goods}清仓特价，私聊我或者{contact}",
    "兼职日结，在家就能做，{contact}",
    "团购{goods}啦，三人成团，{contact}",
    "出闲置{goods}，九成新，感兴趣的{contact}",
)
AD_HOOKS = ("姐妹们福利来了", "低价出", "厂家直销", "内部渠道", "限时优惠")
AD_GOODS = ("面膜", "精华", "口红", "蛋白粉", "瑜伽垫", "电子书会员", "代餐奶昔", "香水")
AD_CONTACTS = (
    "加微信 wx{num}",
    "加V：{num}",
    "加 微 信 {num}",
    "vx同号{num}",
    "扫码进群",
    "私我拿链接",
)

LINKS = (
    "https://t.cn/{code}",
    "http://shop{num}.example.cn/item?id={num}",
    "www.haohuo{num}.com",
    "https://mp.weixin.qq.com/s/{code}",
    "taobao.com/i{num}",
)

CHECKIN_TEMPLATES = (
    "打卡",
    "今日打卡✅",
    "打卡 第{day}天",
    "{topic}打卡，今天也坚持了",
    "早起打卡",
    "#打卡# {phrase}",
)

VOTE_TEMPLATES = ("投票 {n}", "投票{n}", "投票 {wide}", "投票：{n} 我选这个", "投票 {n}，支持！")
FEEDBACK_ITEMS = (
    ("bug", "签到后积分没到账"),
    ("bug", "群公告里的链接打不开"),
    ("idea", "希望每周整理一次精华帖"),
    ("idea", "能不能办一次线下见面会"),
    (None, "最近广告有点多，管理辛苦了"),
)

MINIPROGRAM_TITLES = ("拼多多砍一刀", "帮我助力一下", "点击领取优惠券", "每日签到领红包")

NICKNAMES = (
    "小鱼",
    "阿花",
    "晴天",
    "木木",
    "糖糖",
    "Lily",
    "大雄",
    "橘子",
    "阿杰",
    "小满",
    "苏苏",
    "Kevin",
    "团子",
    "一一",
    "七七",
    "向日葵",
)
CITIES = ("北京", "上海", "广州", "深圳", "杭州", "成都", "武汉", "西安", "南京", "重庆")
SKIN_TYPES = ("干皮", "油皮", "混油", "混干", "敏感肌", "中性")


def display_name(rng: random.Random, *, conforming: bool = True) -> str:
    """Return a display name, in the `昵称-城市-肤质` group format unless told otherwise."""
    nick = rng.choice(NICKNAMES) + (str(rng.randint(1, 99)) if rng.random() < 0.3 else "")
    if not conforming:
        return nick
    return f"{nick}-{rng.choice(CITIES)}-{rng.choice(SKIN_TYPES)}"


def chat(rng: random.Random, *, topic: str) -> str:
    """Return an ordinary chat message of realistic length (mostly short, sometimes long)."""
    roll = rng.random()
    if roll < 0.22:
        text = rng.choice(REPLIES)
    elif roll < 0.30:
        text = rng.choice(GREETINGS)
    else:
        sentences = 1 + min(int(rng.expovariate(0.9)), 6)
        parts = []
        for _ in range(sentences):
            phrase = rng.choice(TOPIC_PHRASES[topic])
            parts.append(rng.choice(OPENERS) + phrase)
        if rng.random() < 0.25:
            parts.append(rng.choice(QUESTIONS))
        text = "，".join(parts) + rng.choice(("", "。", "！", "？", "~", "…"))
    if rng.random() < 0.3:
        text += rng.choice(EMOJI) * rng.randint(1, 3)
    return text


def ad(rng: random.Random) -> str:
    """Return an advertisement that breaks the no-ads rule (加微信, 代购, 团购…)."""
    template = rng.choice(AD_TEMPLATES)
    contact = rng.choice(AD_CONTACTS).format(num=rng.randint(10_000_000, 99_999_999))
    return template.format(hook=rng.choice(AD_HOOKS), goods=rng.choice(AD_GOODS), contact=contact)


def link(rng: random.Random) -> str:
    """Return a message carrying an external link or bare domain."""
    url = rng.choice(LINKS).format(
        num=rng.randint(100, 99999), code="".join(rng.choices("abcdefXYZ0123456789", k=7))
    )
    return rng.choice(("看这个 {u}", "{u} 这个不错", "分享一下 {u}", "{u}")).format(u=url)


def checkin(rng: random.Random, *, topic: str, day: int) -> str:
    """Return a check-in message containing the keyword 打卡."""
    return rng.choice(CHECKIN_TEMPLATES).format(
        day=day, topic=topic, phrase=rng.choice(TOPIC_PHRASES[topic])
    )


def miniprogram_title(rng: random.Random) -> str:
    """Return the title of a mini-program card."""
    return rng.choice(MINIPROGRAM_TITLES)


def vote(rng: random.Random, *, options: int = 3) -> str:
    """Return a poll vote (`投票 2`, full-width `投票 ２` too) for one of `options` options."""
    n = rng.randint(1, options)
    return rng.choice(VOTE_TEMPLATES).format(n=n, wide=chr(0xFF10 + n))


def feedback(rng: random.Random) -> str:
    """Return a feedback message: the tag #反馈, often a category (bug, idea), the text."""
    category, text = rng.choice(FEEDBACK_ITEMS)
    return f"#反馈 {category} {text}" if category else f"#反馈 {text}"
