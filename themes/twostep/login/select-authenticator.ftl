<#-- twostep: keycloak.v2's select-authenticator.ftl ("try another way" chooser) with an introduction,
     real submit buttons instead of clickable divs (keyboard and screen readers), and help for users
     who have neither their phone nor their backup codes. Each option still posts its hidden
     authenticationExecution like the parent. -->
<#import "template.ftl" as layout>
<@layout.registrationLayout displayInfo=false; section>
<!-- template: select-authenticator.ftl (twostep) -->

    <#if section = "header" || section = "show-username">
        <#if section = "header">
            ${msg("loginChooseAuthenticator")}
        </#if>
    <#elseif section = "form">
    <p id="twostep-select-intro" class="twostep-intro">${msg("twostepSelectIntro")}</p>
    <ul class="twostep-choice-list" role="list">
        <#list auth.authenticationSelections as authenticationSelection>
            <li>
                <form id="kc-select-credential-form-${authenticationSelection?index}" class="kc-select-credential-form" action="${url.loginAction}" method="post">
                    <input type="hidden" name="authenticationExecution" value="${authenticationSelection.authExecId}">
                    <button type="submit" class="twostep-choice" id="twostep-choice-${authenticationSelection?index}">
                        <span class="twostep-choice-icon" aria-hidden="true">
                            <i class="${properties['${authenticationSelection.iconCssClass}']!authenticationSelection.iconCssClass}"></i>
                        </span>
                        <span class="twostep-choice-text">
                            <span class="twostep-choice-title">${msg('${authenticationSelection.displayName}')}</span>
                            <span class="twostep-choice-desc">${msg('${authenticationSelection.helpText}')}</span>
                        </span>
                        <i class="${properties.kcSelectAuthListItemArrowIconClass!}" aria-hidden="true"></i>
                    </button>
                </form>
            </li>
        </#list>
    </ul>

    <section id="twostep-select-help" class="twostep-help" aria-labelledby="twostep-select-help-title">
        <h2 id="twostep-select-help-title">${msg("twostepSelectNoneTitle")}</h2>
        <#assign twostepCanAskAdmin = false>
        <#list auth.authenticationSelections as authenticationSelection>
            <#if authenticationSelection.displayName == "twostep-help-request-display-name"><#assign twostepCanAskAdmin = true></#if>
        </#list>
        <p>${msg(twostepCanAskAdmin?then("twostepSelectNoneAsk", "twostepSelectNone"))}</p>
    </section>
    </#if>
</@layout.registrationLayout>
