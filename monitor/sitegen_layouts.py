"""Jinja templates of the sample sites' article pages, one per layout (autoescaped).

Each layout has its own markup and class names, as three unrelated publishers would:
0. semantic HTML5 around an <article>, read-more links in <aside> between paragraphs;
1. an old CMS's div soup (tables of divs, ids, inline scripts), no semantic elements;
2. a script-heavy page with JSON-LD NewsArticle metadata and data-component blocks.
Context: see sitegen_pages._context.
"""

from __future__ import annotations

ARTICLE = """<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }} | {{ outlet }}</title>
<meta name="description" content="{{ lead }}">
<meta property="og:type" content="article">
<meta property="og:title" content="{{ title }}">
<meta property="og:url" content="{{ page_url }}">
<meta property="article:published_time" content="{{ iso }}">
<link rel="canonical" href="{{ page_url }}">
{% if feed_url %}<link rel="alternate" type="{{ feed_type }}" title="{{ outlet }}" \
href="{{ feed_url }}">{% endif %}
<link rel="stylesheet" href="/static/site.css">
<script>window.dataLayer = window.dataLayer || []; dataLayer.push({"page": "article"});</script>
</head>
<body class="page page--article">
<a class="skip-link" href="#main">Skip to main content</a>
<header class="site-header">
<a class="site-header__logo" href="/">{{ outlet }}</a>
<nav class="primary-nav" aria-label="Sections"><ul>
{% for s in sections %}<li><a href="/{{ s|lower }}/">{{ s }}</a></li>{% endfor %}
</ul></nav>
<form class="site-search" action="/search" role="search"><input name="q" placeholder="Search">
<button>Search</button></form>
</header>
<div class="cookie-notice" role="dialog">We use cookies to improve your experience and to show
you relevant advertising. <button>Accept all</button> <button>Manage choices</button></div>
<main id="main" class="page__main">
<nav class="breadcrumb" aria-label="Breadcrumb"><ol><li><a href="/">Home</a></li>
<li><a href="/news/">News</a></li><li>{{ section }}</li></ol></nav>
<article class="story">
<header class="story__header">
<h1 class="story__headline">{{ title }}</h1>
{% if standfirst %}<p class="story__standfirst">{{ standfirst }}</p>{% endif %}
<p class="story__byline">By <a rel="author" href="/profile/">{{ author }}</a></p>
<time class="story__date" datetime="{{ iso }}">{{ date_text }}</time>
</header>
<ul class="share">
{% for label, href in shares %}<li class="share__item"><a class="share__link" \
href="{{ href }}">Share on {{ label }}</a></li>{% endfor %}
<li><button class="share__copy">Copy link</button></li></ul>
<div class="story__body">
{% for kind, a, b in blocks %}{% if kind == "p" %}<p>{{ a }}</p>
{% else %}<aside class="read-more"><strong>Read more:</strong> <a href="{{ a }}">{{ b }}</a>\
</aside>
{% endif %}{% endfor %}
</div>
<footer class="story__footer"><p class="story__topics">Topics: <a href="/news/">News</a>,
<a href="/{{ section|lower }}/">{{ section }}</a></p></footer>
</article>
<aside class="sidebar">
<section class="most-read"><h2>Most read</h2><ol>
{% for href, headline in most_read %}<li><a href="{{ href }}">{{ headline }}</a></li>{% endfor %}
</ol></section>
<section class="newsletter"><h2>Sign up to the Morning Briefing</h2>
<p>The day's top stories from {{ outlet }}, in your inbox every weekday at 7am.</p>
<form action="/newsletter" method="post"><input type="email" name="email"
placeholder="Your email address"><button>Sign up</button></form>
<p class="newsletter__small">You can unsubscribe at any time. See our privacy notice.</p>
</section>
</aside>
<section class="comments" id="comments"><h2>Comments ({{ comments|length }})</h2>
<ol class="comments__list">
{% for name, when, text in comments %}<li class="comment"><p class="comment__author">{{ name }}
<span>{{ when }}</span></p><p class="comment__body">{{ text }}</p></li>
{% endfor %}</ol>
<p class="comments__rules">Comments are moderated. Please read our community guidelines.</p>
</section>
</main>
<footer class="site-footer"><ul>
<li><a href="/about/">About us</a></li><li><a href="/contact/">Contact us</a></li>
<li><a href="/privacy/">Privacy policy</a></li><li><a href="/cookies/">Cookie settings</a></li>
<li><a href="/terms/">Terms and conditions</a></li><li><a href="/advertise/">Advertise</a></li>
</ul><p>&copy; {{ year }} {{ outlet }}. All rights reserved.</p></footer>
</body>
</html>
"""

SOUP = """<html>
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<title>{{ outlet }} - {{ title }}</title>
<meta name="keywords" content="news, {{ section|lower }}, london">
{% if feed_url %}<link rel="alternate" type="{{ feed_type }}" href="{{ feed_url }}">{% endif %}
<script type="text/javascript">var _sf = _sf || []; _sf.push(["pageview", "article"]);</script>
</head>
<body>
<div id="wrapper">
<div id="top"><div class="logo"><a href="/"><img src="/img/logo.gif" alt="{{ outlet }}"></a>
</div><div class="topad"><div class="ad-slot" id="ad-leader">Advertisement</div></div></div>
<div id="menu">
{% for s in sections %}<div class="menu-item"><a href="/{{ s|lower }}.php">{{ s }}</a></div>
{% endfor %}<div class="menu-item login"><a href="/login.php">Log in</a></div>
</div>
<div id="crumbs"><a href="/">Home</a> &gt; <a href="/news.php">News</a> &gt;
<span>{{ section }}</span></div>
<div id="content">
<div class="col-left">
<div class="art-head"><h1 class="art-title">{{ title }}</h1></div>
<div class="art-meta"><span class="art-author">{{ author }}</span> |
<span class="art-date">{{ date_text }}</span></div>
<div class="social">{% for label, href in shares %}<a class="soc-btn" href="{{ href }}" \
title="Share on {{ label }}">{{ label }}</a> {% endfor %}</div>
{% if standfirst %}<div class="art-intro"><b>{{ standfirst }}</b></div>{% endif %}
<div class="art-text">
{% for kind, a, b in blocks %}{% if kind == "p" %}<p class="art-p">{{ a }}</p>
{% else %}<div class="inline-rel"><span class="inline-rel-label">Read more:</span> \
<a href="{{ a }}">{{ b }}</a></div>
{% endif %}{% endfor %}
</div>
<div class="art-tags">Tags: <a href="/tag/{{ section|lower }}">{{ section }}</a></div>
<div class="cmts"><div class="cmts-head">Reader comments ({{ comments|length }})</div>
{% for name, when, text in comments %}<div class="cmt"><div class="cmt-name">{{ name }} \
<span class="cmt-time">{{ when }}</span></div><div class="cmt-text">{{ text }}</div></div>
{% endfor %}<div class="cmt-form">Log in to leave a comment.</div></div>
</div>
<div class="col-right">
<div class="box mostread"><div class="box-head">Most read</div>
{% for href, headline in most_read %}<div class="mr-item"><span class="mr-n">{{ loop.index }}\
</span> <a href="{{ href }}">{{ headline }}</a></div>
{% endfor %}</div>
<div class="box nl"><div class="box-head">Free newsletter</div>
<div class="nl-text">Get the headlines from {{ outlet }} every morning.</div>
<form action="/subscribe.php" method="post"><input type="text" name="em" value="Email">
<input type="submit" value="Subscribe"></form></div>
<div class="box ad"><div class="ad-slot" id="ad-mpu">Advertisement</div></div>
</div>
</div>
<div id="footer"><a href="/about.php">About</a> | <a href="/contact.php">Contact</a> |
<a href="/privacy.php">Privacy</a> | <a href="/terms.php">Terms</a> |
<a href="/rss.php">RSS feeds</a><br>Copyright {{ year }} {{ outlet }}</div>
</div>
<script type="text/javascript">document.write("<div id='tracker'></div>");</script>
</body>
</html>
"""

JSONLD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }} - {{ outlet }}</title>
<meta name="viewport" content="width=device-width">
<meta property="og:title" content="{{ title }}">
<meta property="og:description" content="{{ lead }}">
<meta name="twitter:card" content="summary_large_image">
<link rel="canonical" href="{{ page_url }}">
{% if feed_url %}<link rel="alternate" type="{{ feed_type }}" href="{{ feed_url }}">{% endif %}
<script type="application/ld+json">{{ jsonld }}</script>
<script async src="/_app/chunks/main.js"></script>
</head>
<body>
<div id="__app"><div class="c-shell">
<header data-component="masthead" class="c-mast"><a class="c-mast-logo" href="/">{{ outlet }}</a>
<button class="c-menu-toggle" aria-expanded="false">Menu</button></header>
<nav data-component="nav" class="c-nav">
{% for s in sections %}<a class="c-nav-link" href="/{{ s|lower }}">{{ s }}</a>{% endfor %}
</nav>
<main class="c-main">
<div data-component="breadcrumbs" class="c-crumbs"><a href="/">Home</a><span>/</span>
<a href="/news">News</a><span>/</span><span>{{ section }}</span></div>
<div data-component="headline-block"><h1 data-testid="headline" class="c-hl">{{ title }}</h1>
</div>
<div data-component="byline-block" class="c-byline"><span class="c-by">{{ author }}</span>
<span class="c-role">{{ outlet }}</span>
<time datetime="{{ iso }}" class="c-time">{{ date_text }}</time></div>
<div data-component="share-tools" class="c-share">
{% for label, href in shares %}<a href="{{ href }}" aria-label="Share on {{ label }}" \
class="c-share-btn">{{ label }}</a>{% endfor %}</div>
{% if standfirst %}<div data-component="text-block"><p><b>{{ standfirst }}</b></p></div>\
{% endif %}
{% for kind, a, b in blocks %}{% if kind == "p" %}<div data-component="text-block" \
class="c-text"><p>{{ a }}</p></div>
{% else %}<div data-component="links-block" class="c-links"><p><b>Read more:</b> \
<a href="{{ a }}">{{ b }}</a></p></div>
{% endif %}{% endfor %}
<div data-component="topic-list" class="c-topics"><a href="/{{ section|lower }}">{{ section }}\
</a></div>
<section data-component="comments" class="c-comments"><h2>Join the conversation</h2>
{% for name, when, text in comments %}<div class="c-comment"><div class="c-comment-head">\
{{ name }} &middot; {{ when }}</div><p class="c-comment-text">{{ text }}</p></div>
{% endfor %}</section>
</main>
<div class="c-rail">
<section data-component="most-read" class="c-mostread"><h2>Most read</h2><ol>
{% for href, headline in most_read %}<li><a href="{{ href }}">{{ headline }}</a></li>{% endfor %}
</ol></section>
<section data-component="newsletter" class="c-newsletter"><h2>Get our evening briefing</h2>
<p>Everything you need to know from {{ outlet }}, free.</p>
<form action="/api/newsletter" method="post"><input type="email" name="email">
<button type="submit">Sign me up</button></form></section>
</div>
<footer data-component="footer" class="c-foot"><a href="/about">About</a>
<a href="/contact">Contact</a><a href="/privacy">Privacy</a><a href="/terms">Terms of use</a>
<a href="/accessibility">Accessibility</a><p>&copy; {{ year }} {{ outlet }}</p></footer>
</div></div>
<script>self.__APP_STATE__ = {"route": "article", "ads": true};</script>
</body>
</html>
"""

LAYOUTS = (ARTICLE, SOUP, JSONLD)
